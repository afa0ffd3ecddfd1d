# One thread whose time goes to C code under three Python functions: compress() in zlib's deflate (libz), digest() in
# SHA-256 (libcrypto, through _hashlib), parse() in json's C scanner, which calls the Python hook() back for every
# object. Prints "ready" first.
import hashlib
import json
import zlib

text = b"".join(b"%d," % i for i in range(300000))
blob = b"x" * (64 << 20)
doc = json.dumps([{"a": i} for i in range(3000)])


def hook(obj):
    total = 0
    for i in range(300):
        total += i
    return obj


def compress():
    zlib.compress(text, 9)


def digest():
    hashlib.sha256(blob).digest()


def parse():
    json.loads(doc, object_hook=hook)


def main():
    print("ready", flush=True)
    while True:
        compress()
        digest()
        parse()


main()
