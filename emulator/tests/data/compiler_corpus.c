/* compiler_corpus.c — ordinary C that exercises what gcc emits for kernels and programs:
 * string loops, varargs formatting, function pointers, switch tables, bit builtins, 128-bit
 * arithmetic, atomics, struct copies, variable-length arrays (and, for user code, floating
 * point). emulator/tests/compiler_output.rs compiles it with common flag sets and checks that
 * the interpreter knows every instruction in the result.
 */
#include <stdarg.h>

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned char u8;

struct point { long x, y, z; char name[24]; };

u64 corpus_strlen(const char *s) { u64 n = 0; while (s[n]) n++; return n; }

int corpus_strcmp(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return (u8)*a - (u8)*b;
}

static char *put_number(char *out, u64 v, int base, int width, char pad) {
    char tmp[32];
    int n = 0;
    do { tmp[n++] = "0123456789abcdef"[v % base]; v /= base; } while (v);
    while (n < width--) *out++ = pad;
    while (n) *out++ = tmp[--n];
    return out;
}

int corpus_format(char *out, const char *fmt, ...) {
    va_list ap;
    char *start = out;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') { *out++ = *fmt; continue; }
        switch (*++fmt) {
        case 'd': { long v = va_arg(ap, long); if (v < 0) { *out++ = '-'; v = -v; } out = put_number(out, v, 10, 0, ' '); break; }
        case 'u': out = put_number(out, va_arg(ap, u64), 10, 0, ' '); break;
        case 'x': out = put_number(out, va_arg(ap, u64), 16, 0, ' '); break;
        case 'p': *out++ = '0'; *out++ = 'x'; out = put_number(out, (u64)(unsigned long)va_arg(ap, void *), 16, 16, '0'); break;
        case 's': { const char *s = va_arg(ap, const char *); while (*s) *out++ = *s++; break; }
        case 'c': *out++ = (char)va_arg(ap, int); break;
        default: *out++ = *fmt; break;
        }
    }
    *out = 0;
    va_end(ap);
    return (int)(out - start);
}

void corpus_sort(long *a, int n, int (*less)(long, long)) {
    for (int i = 1; i < n; i++) {
        long v = a[i];
        int j = i - 1;
        while (j >= 0 && less(v, a[j])) { a[j + 1] = a[j]; j--; }
        a[j + 1] = v;
    }
}

u64 corpus_bits(u64 x) {
    u64 r = 0;
    if (x) r += __builtin_ctzll(x) + __builtin_clzll(x);
    r += __builtin_popcountll(x) + __builtin_parityll(x);
    r ^= __builtin_bswap64(x) ^ __builtin_bswap32((u32)x);
    r += (x << 13 | x >> 51) + ((long long)x >> 7);
    u64 hi;
    if (__builtin_mul_overflow(x, 0x9E3779B97F4A7C15ULL, &hi)) r++;
    return r + hi;
}

#ifdef __SIZEOF_INT128__
unsigned __int128 corpus_wide(u64 a, u64 b) { return (unsigned __int128)a * b + a / (b | 1) + a % (b | 1); }
#endif
u64 corpus_divide(u64 a, u64 b) { return a / (b | 1) + a % (b | 1); }

long corpus_signed(long a, long b) { return b ? a / b + a % b : a >> 3; }

u64 corpus_atomics(u64 *counter, u64 *flag) {
    u64 old = __atomic_fetch_add(counter, 3, __ATOMIC_SEQ_CST);
    u64 expected = 0;
    __atomic_compare_exchange_n(flag, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    __atomic_exchange_n(counter, old + 7, __ATOMIC_SEQ_CST);
    __atomic_fetch_or(flag, 4, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return old + __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

struct point corpus_copy(const struct point *p, int n) {
    struct point q = *p;
    long scratch[n + 1];
    for (int i = 0; i <= n; i++) scratch[i] = q.x * i + q.y;
    q.z = scratch[n / 2];
    q.name[0] = 'c';
    return q;
}

int corpus_dispatch(int op, int a, int b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return b ? a / b : 0;
    case 4: return a & b;
    case 5: return a | b;
    case 6: return a ^ b;
    case 7: return a << (b & 31);
    case 8: return a >> (b & 31);
    case 9: return a < b;
    default: return -1;
    }
}

u32 corpus_crc32(const u8 *p, u64 n) {
    u32 crc = 0xFFFFFFFF;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1));
    }
    return ~crc;
}

void corpus_fill(u8 *p, u64 n, u8 v) { for (u64 i = 0; i < n; i++) p[i] = v; }

#ifdef USER_CODE
double corpus_float(long a, double b) {
    double r = (double)a * b + b / 3.0;
    float f = (float)r;
    return r > 1e9 ? (long)r : f * 0.5f;
}
#endif
