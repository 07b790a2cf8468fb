# print.S — 64-bit numbers on the console, in decimal and hexadecimal; the UART's routines.
# Teaches: turning a number into digits is repeated division (or shifting, for hex); the
# digits come out backwards, so decimal goes through a small buffer on the stack.

    .code64
    .text
# print_u64: RAX = unsigned value, printed in decimal. Clobbers RAX, RCX, RDX, RSI, RDI, R8.
print_u64:
    sub $32, %rsp                   # 20 digits at most, plus a terminating zero
    lea 31(%rsp), %r8
    movb $0, (%r8)
    mov $10, %ecx
1:  xor %edx, %edx
    div %rcx                        # RAX = RAX / 10, RDX = the last digit
    add $'0', %dl
    dec %r8
    mov %dl, (%r8)
    test %rax, %rax
    jnz 1b
    mov %r8, %rsi
    call serial_puts
    add $32, %rsp
    ret

# print_hex64: RAX = value, printed as exactly 16 hexadecimal digits. Clobbers RAX, RCX, RDX,
# RSI, RDI, R8.
print_hex64:
    mov $16, %esi
    jmp print_hex_digits

# print_hex32: EAX = value, printed as exactly 8 hexadecimal digits (a 32-bit register, as
# CPUID returns them). Clobbers like print_hex64.
print_hex32:
    shl $32, %rax                   # the digits wanted at the top, where the loop starts
    mov $8, %esi
    jmp print_hex_digits

# print_hex: RAX = value, printed in hexadecimal without leading zeros (at least one digit).
# Clobbers like print_hex64.
print_hex:
    mov $16, %esi
1:  cmp $1, %esi                    # drop zero nibbles from the top, keeping the last one
    je print_hex_digits
    mov %rax, %rcx
    shr $60, %rcx
    jnz print_hex_digits
    shl $4, %rax
    dec %esi
    jmp 1b

# print_hex_digits: the top ESI nibbles of RAX, most significant first.
print_hex_digits:
    mov %rax, %r8
1:  rol $4, %r8                     # the next digit into the low nibble
    mov %r8d, %eax
    and $0xF, %eax
    add $'0', %al
    cmp $'9', %al
    jbe 2f
    add $('a' - '0' - 10), %al
2:  push %rsi
    call serial_putc
    pop %rsi
    dec %esi
    jnz 1b
    ret

    SERIAL_ROUTINES _uart           # serial_puts_uart, serial_putc_uart, ... as 64-bit code
                                    # (serial.inc); serial_puts itself is the console's (console.S)
