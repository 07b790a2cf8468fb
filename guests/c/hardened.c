/* hardened.c — a 64-bit kernel in C, compiled the way Debian compiles code: gcc -O2 with
 * -fcf-protection=full and -fstack-protector-strong (see guests/build.rs).
 * Teaches: what "code nobody wrote for vmscope" starts with — ENDBR64 at every function that
 * can be reached indirectly, NOTRACK jumps through switch tables, stack canaries — and that a
 * CPU without CET runs all of it, because those encodings sit in the hint-NOP space.
 *
 * Prints its checks on COM1 and returns 0x10 (exit status 33) when all pass, 0x11 otherwise.
 * The expected values were computed on the host (Python), not by running this code.
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

static inline void outb(u16 port, u8 value) { __asm__ volatile("outb %0, %1" ::"a"(value), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static void putc_serial(char c) {
    while (!(inb(0x3F8 + 5) & 0x20)) { }
    outb(0x3F8, (u8)c);
}

static void puts_serial(const char *s) {
    while (*s) putc_serial(*s++);
}

static void put_hex(u64 v) {
    static const char digits[] = "0123456789abcdef";
    char buf[17];
    for (int i = 15; i >= 0; i--) { buf[i] = digits[v & 15]; v >>= 4; }
    buf[16] = 0;
    puts_serial(buf);
}

/* gcc may call these for struct copies and zeroing, as in any freestanding program. */
void *memset(void *d, int c, u64 n) { u8 *p = d; while (n--) *p++ = (u8)c; return d; }
void *memcpy(void *d, const void *s, u64 n) { u8 *p = d; const u8 *q = s; while (n--) *p++ = *q++; return d; }

/* The stack protector's canary and its failure path (-mstack-protector-guard=global). */
u64 __stack_chk_guard = 0x5eed5eed5eed5eedUL;
void __stack_chk_fail(void) { puts_serial("stack smashed\n"); outb(0xF4, 0x11); for (;;) { } }

/* Indirect calls: each target starts with ENDBR64. */
static u64 twice(u64 x) { return 2 * x; }
static u64 square(u64 x) { return x * x; }
static u64 cube(u64 x) { return x * x * x; }
static u64 (*const table[])(u64) = { twice, square, cube };

/* A switch dense enough for a jump table: a NOTRACK indirect jump. */
static __attribute__((noinline)) u64 classify(u32 n) {
    switch (n) {
    case 0: return 11;
    case 1: return 23;
    case 2: return 37;
    case 3: return 41;
    case 4: return 53;
    case 5: return 67;
    case 6: return 79;
    case 7: return 83;
    default: return 97;
    }
}

static __attribute__((noinline)) u64 fib(u32 n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

/* An array on the stack: -fstack-protector-strong guards this function with a canary. */
static __attribute__((noinline)) u64 checksum_text(const char *s) {
    char copy[64];
    u64 n = 0, h = 1469598103934665603UL;
    while (s[n] && n < sizeof copy - 1) { copy[n] = s[n]; n++; }
    copy[n] = 0;
    for (u64 i = 0; i < n; i++) h = (h ^ (u8)copy[i]) * 1099511628211UL;
    return h;
}

static int check(const char *what, u64 got, u64 want) {
    puts_serial(what);
    puts_serial(got == want ? ": ok " : ": FAIL ");
    put_hex(got);
    puts_serial("\n");
    return got == want;
}

static void put_dec(u64 v) {
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    puts_serial(buf + i);
}

/* The end of this kernel's image, bss included (link/multiboot.ld). */
extern char _bss_end[];

/* Multiboot modules (information flag bit 3): each one's string, length and FNV-1a hash, and
 * whether the loader put it page-aligned after the kernel — what QEMU's -initrd does too. */
static void list_modules(u32 mbi_addr) {
    const u32 *mbi = (const u32 *)(u64)mbi_addr;
    if (!(mbi[0] & (1 << 3))) return;
    const u32 *mods = (const u32 *)(u64)mbi[6];
    u64 kernel_end = ((u64)_bss_end + 4095) & ~4095UL;
    for (u32 i = 0; i < mbi[5]; i++) {
        const u32 *m = mods + 4 * i;
        const u8 *p = (const u8 *)(u64)m[0];
        u64 len = m[1] - m[0], h = 14695981039346656037UL; /* FNV-1a's offset basis */
        for (u64 j = 0; j < len; j++) h = (h ^ p[j]) * 1099511628211UL;
        puts_serial("hardened: module ");
        put_dec(i);
        puts_serial(" \"");
        puts_serial((const char *)(u64)m[2]);
        puts_serial("\": ");
        put_dec(len);
        puts_serial(" bytes, fnv1a ");
        put_hex(h);
        puts_serial((m[0] & 4095) == 0 && m[0] >= kernel_end ? ", page-aligned after the kernel\n"
                                                           : ", MISPLACED\n");
    }
}

u64 kmain(u32 mbi) {
    int ok = 1;
    puts_serial("hardened: a gcc -fcf-protection=full kernel in long mode\n");
    u64 sum = 0;
    for (u64 i = 0; i < 30; i++) sum += table[i % 3](i);
    ok &= check("indirect calls", sum, 74880);
    u64 cls = 0;
    for (u32 i = 0; i < 12; i++) cls = cls * 3 + classify(i);
    ok &= check("jump table", cls, 0x44a48a);
    ok &= check("recursion", fib(20), 6765);
    ok &= check("stack canary", checksum_text("vmscope runs what nobody wrote for it"),
                0x4c36f692d90a0d9cUL);
    u64 big = 0xfedcba9876543210UL;
    ok &= check("64-bit division", big / 12345 + big % 12345, 0x548fd367c8280UL);
    list_modules(mbi);
    puts_serial(ok ? "hardened: all checks passed\n" : "hardened: some checks FAILED\n");
    return ok ? 0x10 : 0x11;
}
