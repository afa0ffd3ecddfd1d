# Spins in busy() until killed: CPU for the sampler in an interpreter without probes.
import time

def busy():
    n = 0
    while True:
        n += 1

print("ready", flush=True)
busy()
