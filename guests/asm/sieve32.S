# sieve32.S — a sieve of Eratosthenes over 1 MiB of bytes, repeated: the CPU-speed benchmark.
# Teaches: what "CPU-bound" means to a VMM — millions of plain loads, stores, adds and
# branches in 32-bit protected mode, paging off, no I/O and no interrupts between the first
# line and the last, so interp, bt and kvm differ only in how fast they run the same loops.
#
# The command line picks the work: `rounds=N` (1..1000000, default DEFAULT_ROUNDS). Each
# round clears the array (one byte per number: 0 = prime so far, 1 = composite) and sieves
# it; after the last round the primes below 2^20 are counted and printed:
#
#     sieve32: 82025 primes below 1048576, 2 rounds
#
# then the guest exits with 0x10. A malformed `rounds=` prints a line saying so and exits
# with 0x1E. The array is in .bss, so the loader (and MULTIBOOT_ENTRY) zeroes it and the
# whole kernel stays between 1 MiB and about 2 MiB, well inside any RAM size.

    .include "pc.inc"
    .include "serial.inc"
    .include "multiboot.inc"
    .include "gdt32.inc"

    MULTIBOOT_HEADER

.set SIEVE_SIZE, 1 << 20        # numbers 0 .. 2^20 - 1, one byte each
.set DEFAULT_ROUNDS, 1          # a boot without rounds= stays short on the interpreter
.set MAX_ROUNDS, 1000000
.set EXIT_BAD_ROUNDS, 0x1E

    .code32
    .text
    .globl _start
_start:
    MULTIBOOT_ENTRY stack_top
    LOAD_FLAT_GDT
    call serial_init
    CHECK_MULTIBOOT_MAGIC

    call parse_rounds           # EBX = the Multiboot information; EBP := rounds
    mov %ebp, rounds

    # The benchmark: nothing but integer code from here to the count.
1:  call sieve_round
    dec %ebp
    jnz 1b

    call count_primes           # EAX = primes below SIEVE_SIZE
    mov %eax, %ebx              # serial_* preserve EBX
    PRINT "sieve32: "
    mov %ebx, %eax
    call serial_dec
    PRINT " primes below "
    mov $SIEVE_SIZE, %eax
    call serial_dec
    PRINT ", "
    mov rounds, %eax
    call serial_dec
    PRINT " round"
    cmpl $1, rounds
    je 2f
    PRINT "s"
2:  PRINT "\n"
    EXIT 0x10

# sieve_round: clears the array, then crosses out every multiple of every prime p from p*p
# on (smaller multiples have a smaller prime factor and are crossed out already). Stops at
# the first p with p*p >= SIEVE_SIZE: whatever is left uncrossed then is prime.
# Clobbers EAX, ECX, EDX, ESI, EDI.
sieve_round:
    mov $sieve, %edi            # clear, four bytes per store
    mov $(SIEVE_SIZE / 4), %ecx
    xor %eax, %eax
1:  mov %eax, (%edi)
    add $4, %edi
    dec %ecx
    jnz 1b

    mov $2, %esi                # ESI = p, the next candidate
    mov $4, %edx                # EDX = p * p, kept up to date without a multiply
2:  cmp $SIEVE_SIZE, %edx
    jae 5f
    cmpb $0, sieve(%esi)        # crossed out already: not a prime, nothing to do
    jne 4f
    mov %edx, %eax              # EAX = p*p, p*p + p, p*p + 2p, ...
3:  movb $1, sieve(%eax)
    add %esi, %eax
    cmp $SIEVE_SIZE, %eax
    jb 3b
4:  lea 1(%edx, %esi, 2), %edx  # (p + 1)^2 = p^2 + 2p + 1
    inc %esi
    jmp 2b
5:  ret

# count_primes: EAX = how many of 2 .. SIEVE_SIZE - 1 are not crossed out.
# Clobbers ESI.
count_primes:
    xor %eax, %eax
    mov $2, %esi                # 0 and 1 are not primes (and the sieve never marks them)
1:  cmpb $0, sieve(%esi)
    jne 2f
    inc %eax
2:  inc %esi
    cmp $SIEVE_SIZE, %esi
    jb 1b
    ret

# parse_rounds: EBX = the Multiboot information. EBP := N from a word `rounds=N` on the
# command line (words are separated by spaces; QEMU puts the kernel's file name first, and
# other words are ignored), or DEFAULT_ROUNDS. A value that is not a decimal number from 1
# to MAX_ROUNDS stops the guest with EXIT_BAD_ROUNDS. Clobbers EAX, ECX, EDX, ESI, EDI.
parse_rounds:
    mov $DEFAULT_ROUNDS, %ebp
    testl $MBI_HAS_CMDLINE, MBI_FLAGS(%ebx)
    jz 9f
    mov MBI_CMDLINE(%ebx), %esi # paging is off: the physical address is usable as it is
1:  movzbl (%esi), %eax         # at the start of a word? skip the spaces before it
    test %al, %al
    jz 9f
    cmp $' ', %al
    jne 2f
    inc %esi
    jmp 1b
2:  mov $key_rounds, %edi       # does the word begin with "rounds="?
    xor %ecx, %ecx
3:  movzbl (%edi, %ecx), %eax
    test %al, %al
    jz 5f                       # the whole key matched
    cmp (%esi, %ecx), %al
    jne 4f
    inc %ecx
    jmp 3b
4:  movzbl (%esi), %eax         # another word: skip to the space (or the end) after it
    test %al, %al
    jz 9f
    cmp $' ', %al
    je 1b
    inc %esi
    jmp 4b
5:  add %ecx, %esi              # ESI = the first digit
    xor %ebp, %ebp              # EBP = the value so far
    mov %esi, %edi              # to tell "rounds=" with no digits
6:  movzbl (%esi), %eax
    test %al, %al
    jz 7f
    cmp $' ', %al
    je 7f
    sub $'0', %eax
    cmp $9, %eax                # unsigned: anything below '0' wraps round to a large value
    ja bad_rounds
    imul $10, %ebp, %ebp
    add %eax, %ebp
    cmp $MAX_ROUNDS, %ebp       # checked per digit, so EBP can never overflow
    ja bad_rounds
    inc %esi
    jmp 6b
7:  cmp %edi, %esi
    je bad_rounds
    test %ebp, %ebp
    jz bad_rounds
    jmp 1b                      # a later rounds= wins, like a later option on any command line
9:  ret

bad_rounds:
    PRINT "sieve32: rounds= needs a number from 1 to 1000000\n"
    EXIT EXIT_BAD_ROUNDS

    SERIAL_ROUTINES

    .section .rodata
key_rounds: .asciz "rounds="

    .bss
    .balign 4
rounds: .skip 4                 # for the final line (EBP counts down to 0)
    .balign 16
    .skip 4096
stack_top:
    .balign 4096
sieve:  .skip SIEVE_SIZE
