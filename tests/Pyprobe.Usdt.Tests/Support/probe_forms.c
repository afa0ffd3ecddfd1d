#define SDT_NOTE(prov, name, sema, args) \
  "990: nop\n" \
  ".pushsection .note.stapsdt,\"?\",\"note\"\n" \
  ".balign 4\n" \
  ".4byte 992f-991f, 994f-993f, 3\n" \
  "991: .asciz \"stapsdt\"\n" \
  "992: .balign 4\n" \
  "993: .8byte 990b\n" \
  ".8byte _.stapsdt.base\n" \
  ".8byte " #sema "\n" \
  ".asciz \"" prov "\"\n" \
  ".asciz \"" name "\"\n" \
  ".asciz \"" args "\"\n" \
  "994: .balign 4\n" \
  ".popsection\n" \
  ".ifndef _.stapsdt.base\n" \
  ".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n" \
  ".weak _.stapsdt.base\n" \
  ".hidden _.stapsdt.base\n" \
  "_.stapsdt.base: .space 1\n" \
  ".size _.stapsdt.base, 1\n" \
  ".popsection\n" \
  ".endif\n"

unsigned short test_tick_semaphore __attribute__((section(".probes"))) = 0;
long g_counter = 5;
static int g_table[8] = {1,2,3,4,5,6,7,8};

__attribute__((noinline)) void work(int i, long *p) {
  int local[16];
  for (int k = 0; k < 16; k++) local[k] = k * i;
  __asm__ __volatile__(SDT_NOTE("test", "tick", test_tick_semaphore, "-8@%[a1] -4@%[a2] 8@%[a3] -4@%[a4] 4@$%c[a5] -4@%[a6]")
    :: [a1] "m"(g_counter), [a2] "m"(local[i & 15]), [a3] "r"(p), [a4] "m"(g_table[3]), [a5] "n"(-42), [a6] "r"(i));
  __asm__ __volatile__(SDT_NOTE("test", "tick", test_tick_semaphore, "-4@%[a1]") :: [a1] "r"(i+1));
}
int main(int argc, char **argv) { long x = argc; work(argc, &x); work(argc+1, &x); return 0; }
