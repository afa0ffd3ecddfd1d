/* A known native call chain for the unwinder tests: main -> outer -> middle -> inner.
 * inner, a leaf, captures its own rip, rsp and rbp with inline asm and copies up to 16 KiB of the stack from rsp
 * (what a BPF sampler sends); main writes the copy to argv[1], prints the registers, then waits to be killed so the
 * test can read its /proc/PID/maps while the code is still mapped. middle has a variable-length array, so even at
 * -O2 -fomit-frame-pointer its CFA is rbp-based. middle is static: a stripped -rdynamic build exports the others only. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define STACK_COPY 16384

unsigned long captured_rip, captured_rsp, captured_rbp, copied;
unsigned long stack_end; /* end of the [stack] mapping: the copy must not read past it */
unsigned char stack_copy[STACK_COPY];
volatile int depth = 3;

__attribute__((noinline, noclone)) int inner(int x)
{
    unsigned long rip, rsp, rbp;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" : "=r"(rip), "=r"(rsp), "=r"(rbp) : : "memory");
    captured_rip = rip;
    captured_rsp = rsp;
    captured_rbp = rbp;
    unsigned long n = stack_end - rsp;
    if (n > STACK_COPY) n = STACK_COPY;
    /* volatile: a plain loop would become a call to memcpy, and inner would no longer be a leaf */
    const volatile unsigned char *from = (const volatile unsigned char *)rsp;
    for (unsigned long i = 0; i < n; i++) stack_copy[i] = from[i];
    copied = n;
    return x + 1;
}

static __attribute__((noinline, noclone)) int middle(int n)
{
    volatile char buffer[n];
    buffer[0] = (char)n;
    buffer[n - 1] = 1;
    int r = inner(n);
    return r + buffer[0] + buffer[n - 1];
}

__attribute__((noinline, noclone)) int outer(int n)
{
    int r = middle(n * 16 + 8);
    return r * 3 + 1;
}

static unsigned long find_stack_end(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long start, end, found = 0;
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &start, &end) == 2) found = end;
    if (maps) fclose(maps);
    return found;
}

int main(int argc, char **argv)
{
    if (argc < 2) return 2;
    stack_end = find_stack_end();
    int r = outer(depth);
    FILE *out = fopen(argv[1], "wb");
    if (!out || fwrite(stack_copy, 1, copied, out) != copied || fclose(out) != 0) return 3;
    printf("%lx %lx %lx %lx %d\n", captured_rip, captured_rsp, captured_rbp, copied, r);
    fflush(stdout);
    pause();
    return 0;
}
