# user.S — the ring-3 programs: compute, system calls, page faults, #DE, RDTSC.
# Teaches: what user code can do alone (compute, RDTSC) and what costs a trip into the kernel
# (SYSCALL, INT 0x80, a page fault, a division by zero) — the trips a hypervisor may see.
#
# These pages are mapped user, read-only and executable in every task's address space; data
# lives on the stack and in the demand-zero region. Each program gets RDI = iterations and
# ends with SYS_EXIT(checksum). Only 64-bit-safe addressing: absolute addresses here are
# below 4 MiB, so 32-bit displacements reach them.

.set SIEVE_SIZE, 8192           # compute: primes below this (1028 of them)
.set CRC_BUFFER, USER_HEAP + SIEVE_SIZE
.set CRC_BYTES,  1024
.set XORSHIFT_STEPS, 4096

    .section .user_text, "ax"
    .code64
user_text_start:

# user_exit: RDI = the result. SYS_EXIT does not return.
user_exit:
    mov $SYS_EXIT, %eax
    syscall
    jmp user_exit

# compute: per iteration i, round = primes below 8192 (a sieve over 8 KiB of demand-zero
# memory) + CRC-32 of 1 KiB of bytes (k * 31 + i) + 4096 xorshift64 steps from i + 1;
# checksum = fold of the rounds: sum = rotl(sum, 7) XOR round.
user_compute:
    mov %rdi, %r12                  # R12 = iterations
    xor %r13d, %r13d                # R13 = i
    xor %r15d, %r15d                # R15 = checksum
1:  cmp %r12, %r13
    jae 2f
    call u_sieve
    mov %rax, %r14
    mov %r13, %rdi
    call u_crc32
    add %rax, %r14
    mov %r13, %rdi
    call u_xorshift
    add %rax, %r14
    rol $7, %r15
    xor %r14, %r15
    inc %r13
    jmp 1b
2:  mov %r15, %rdi
    jmp user_exit

# u_sieve: RAX = how many primes are below SIEVE_SIZE (Eratosthenes over a byte array).
u_sieve:
    mov $USER_HEAP, %edi            # clear the array: 8 bytes at a time
    mov $SIEVE_SIZE / 8, %ecx
    xor %eax, %eax
    rep stosq
    mov $2, %ecx                    # RCX = candidate p, RAX = primes found
1:  cmp $SIEVE_SIZE, %rcx
    jae 4f
    cmpb $0, USER_HEAP(%rcx)
    jne 3f
    inc %rax                        # p is prime: cross out p*p, p*p + p, ...
    mov %rcx, %rdx
    imul %rcx, %rdx
2:  cmp $SIEVE_SIZE, %rdx
    jae 3f
    movb $1, USER_HEAP(%rdx)
    add %rcx, %rdx
    jmp 2b
3:  inc %rcx
    jmp 1b
4:  ret

# u_crc32: RDI = i. Fills the buffer with bytes (k * 31 + i) mod 256 and returns their
# CRC-32 (the reflected IEEE polynomial 0xEDB88320, one bit at a time) in RAX.
u_crc32:
    xor %ecx, %ecx
1:  imul $31, %ecx, %eax
    add %edi, %eax
    mov %al, CRC_BUFFER(%rcx)
    inc %ecx
    cmp $CRC_BYTES, %ecx
    jb 1b
    mov $0xFFFFFFFF, %eax
    xor %ecx, %ecx
2:  movzbl CRC_BUFFER(%rcx), %edx
    xor %edx, %eax
    mov $8, %esi
3:  shr $1, %eax                    # the bit shifted out lands in CF
    jnc 4f
    xor $0xEDB88320, %eax
4:  dec %esi
    jnz 3b
    inc %ecx
    cmp $CRC_BYTES, %ecx
    jb 2b
    not %eax                        # (a 32-bit operation clears bits 63:32)
    ret

# u_xorshift: RDI = i; RAX = 4096 steps of xorshift64 (13, 7, 17) from i + 1.
u_xorshift:
    lea 1(%rdi), %rax
    mov $XORSHIFT_STEPS, %ecx
1:  mov %rax, %rdx
    shl $13, %rdx
    xor %rdx, %rax
    mov %rax, %rdx
    shr $7, %rdx
    xor %rdx, %rax
    mov %rax, %rdx
    shl $17, %rdx
    xor %rdx, %rax
    dec %ecx
    jnz 1b
    ret

# syscall: SYS_ECHO(i) through SYSCALL/SYSRET. Checksum: the sum of the answers, i + 1 each.
user_syscall:
    mov %rdi, %r12
    xor %r13d, %r13d
    xor %r14d, %r14d
1:  cmp %r12, %r13
    jae 2f
    mov $SYS_ECHO, %eax
    mov %r13, %rdi
    syscall
    add %rax, %r14
    inc %r13
    jmp 1b
2:  mov %r14, %rdi
    jmp user_exit

# int80: the same call through the DPL-3 interrupt gate (IDT, TSS.RSP0, IRETQ).
user_int80:
    mov %rdi, %r12
    xor %r13d, %r13d
    xor %r14d, %r14d
1:  cmp %r12, %r13
    jae 2f
    mov $SYS_ECHO, %eax
    mov %r13, %rdi
    int $0x80
    add %rax, %r14
    inc %r13
    jmp 1b
2:  mov %r14, %rdi
    jmp user_exit

# pagefault: each op reads a page of the window that is not mapped yet — a demand-zero fault
# — then dirties it. After PF_PAGES ops the window is handed back (SYS_RELEASE) and the next
# round faults again, on recycled frames that must come back zeroed.
# Checksum: sum of (value read XOR i), plus the pages each release reports.
user_pagefault:
    mov %rdi, %r12
    xor %r13d, %r13d                # i
    xor %r14d, %r14d                # checksum
    xor %ebx, %ebx                  # the next page of the window
1:  cmp %r12, %r13
    jae 3f
    cmp $PF_PAGES, %ebx
    jb 2f
    mov $SYS_RELEASE, %eax
    mov $PF_WINDOW, %edi
    mov $PF_PAGES, %esi
    syscall
    add %rax, %r14
    xor %ebx, %ebx
2:  mov %rbx, %rdi
    shl $12, %rdi
    add $PF_WINDOW, %rdi
    mov (%rdi), %rax                # faults: not present yet; then reads 0
    xor %r13, %rax
    add %rax, %r14
    mov %r13, %rax
    not %rax
    mov %rax, (%rdi)                # leave something for the next owner's zeroing to erase
    inc %ebx
    inc %r13
    jmp 1b
3:  mov %r14, %rdi
    jmp user_exit

# divzero: DIV by zero, #DE, the kernel's handler, IRETQ back. The handler skips the DIV and
# returns RAX XOR 0xDEDE. Checksum: sum of (i XOR 0xDEDE).
user_divzero:
    mov %rdi, %r12
    xor %r13d, %r13d
    xor %r14d, %r14d
1:  cmp %r12, %r13
    jae 2f
    mov %r13, %rax
    xor %edx, %edx
    xor %ecx, %ecx
    div %ecx                        # F7 F1: the one instruction the handler fixes up
    add %rax, %r14
    inc %r13
    jmp 1b
2:  mov %r14, %rdi
    jmp user_exit

# rdtsc: read the time-stamp counter. Checksum: how many reads were not below the previous
# one (all of them, on a sane engine).
user_rdtsc:
    mov %rdi, %r12
    xor %r13d, %r13d
    xor %r14d, %r14d
    rdtsc
    shl $32, %rdx
    or %rax, %rdx
    mov %rdx, %rbx                  # the previous reading
1:  cmp %r12, %r13
    jae 3f
    rdtsc
    shl $32, %rdx
    or %rax, %rdx
    cmp %rbx, %rdx
    jb 2f
    inc %r14
2:  mov %rdx, %rbx
    inc %r13
    jmp 1b
3:  mov %r14, %rdi
    jmp user_exit

user_text_end:
    .text
