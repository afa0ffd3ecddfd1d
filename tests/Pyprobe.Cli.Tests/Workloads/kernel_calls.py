# Time in the kernel, two ways, in turns: stat_loop() makes system calls for 0.2 s (a CPU sample finds it in the
# kernel's stat code about a third of the time here), then wait_for_data() blocks 0.2 s in a pipe read until a timer
# thread writes the byte it waits for.
import os
import threading
import time

r, w = os.pipe()


def stat_loop():
    end = time.monotonic() + 0.2
    while time.monotonic() < end:
        os.stat("/")


def wait_for_data():
    threading.Timer(0.2, os.write, (w, b"x")).start()
    return os.read(r, 1)


print("ready", flush=True)
while True:
    stat_loop()
    wait_for_data()
