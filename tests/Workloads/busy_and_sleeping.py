import threading, time
def burn():
    x = 0
    while True:
        x += 1
def sleeper():
    while True:
        time.sleep(0.1)
threading.Thread(target=burn, daemon=True).start()
sleeper()
