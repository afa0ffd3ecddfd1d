# Burns CPU in a known ratio: heavy() three times as long as light(), for SECONDS (argv[1]) of CPU time.
# CPU time, not wall time: on a busy machine the shares and the number of samples stay the same.
import sys
import time


def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def heavy():
    spin(0.03)


def light():
    spin(0.01)


def main(seconds):
    stop = time.process_time() + seconds
    while time.process_time() < stop:
        heavy()
        light()


main(float(sys.argv[1]))
