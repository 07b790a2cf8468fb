# console.S — the kernel's console: the UART, or a virtio-console with `console=virtio`; and
# console-write, the workload that prints lines through whichever of the two is in use.
# Teaches: the same text through a fully emulated device and a paravirtual one. The UART takes
# one byte per OUT, after an IN that polls its line status: two traps per byte under any VMM.
# The virtio-console takes a whole line: the driver puts it in one transmit buffer — one
# descriptor in the transmitq — and rings the doorbell once: one trap per line.
#
# PRINT (serial.inc) calls serial_puts. In this kernel that is the entry below, which sends
# the text where the console is: to the UART's own routines (serial_puts_uart: print.S emits
# SERIAL_ROUTINES with the suffix _uart), or into the line buffer. A line goes out at its
# '\n', when the buffer is full, and when the kernel exits (EXIT calls console_flush in long
# mode, see kernel.S), so nothing printed is lost.
#
# console=virtio looks for a virtio-console on PCI (1af4:1043, modern virtio-pci), then in the
# virtio-mmio windows (device ID 3), and brings it up with the shared code (virtio.S):
# VERSION_1 only, the transmitq only (queue 1; the receiveq stays unused, this kernel reads
# no input), no interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT: the driver polls the used index for
# its buffer back — vmscope's device has used it before the doorbell write returns, other
# VMMs soon after). Without a device it says so on the UART and stays there.
#
# console-write (workloads=console-write:N) prints N lines of CONSOLE_LINE bytes,
#     line 0000002a: qrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl
# the index in 8 hex digits, then 48 letters from 'a' + index mod 26 on; its checksum folds
# every line's eight 8-byte words, h = (h XOR word) × 0x100000001B3 from 0xCBF29CE484222325
# (FNV-1a's constants, a word at a time). The host (src/compare/suite.rs) makes the
# same lines and checks both the checksum and the text that arrived.

.set CONSOLE_UART,    0
.set CONSOLE_VIRTIO,  1
.set VIRTIO_DEVICE_CONSOLE, 3
.set VIRTIO_PCI_IDS_CONSOLE, ((VIRTIO_PCI_MODERN + VIRTIO_DEVICE_CONSOLE) << 16) | VIRTIO_PCI_VENDOR
.set CONSOLE_TRANSMITQ, 1
.set CONSOLE_SPINS,   100000000     # polls of the used index before giving up on the device
.set CONSOLE_LINE,    64            # console-write's line length, '\n' included
.set FNV_OFFSET,      0xCBF29CE484222325
.set FNV_PRIME,       0x100000001B3

    .code64
    .text
# serial_puts: ESI = a zero-terminated string, to the console in use. Clobbers RAX, RCX, RDX,
# RSI, RDI (serial.inc's convention: RBX, RBP and R8-R15 are kept). For the virtio-console
# the text goes into the line buffer a piece at a time — REPNE SCASB finds where the string
# or the room in the buffer ends and then the next '\n', REP MOVSB copies up to it — so a
# line costs a few instructions however long it is; each piece that ends a line (or fills
# the buffer) is sent.
serial_puts:
    cmpq $0, console_virtio(%rip)
    je serial_puts_uart
1:  cmpb $0, (%rsi)
    je 9f
    mov $CON_BUF_SIZE, %ecx
    sub con_len(%rip), %rcx         # RCX = the room left in the buffer (at least 1)
    mov %rsi, %rdi
    xor %eax, %eax
    repne scasb                     # the string's zero, within the room?
    jne 2f
    dec %rdi                        # found: the text ends before it
2:  mov %rdi, %rcx
    sub %rsi, %rcx                  # RCX = the bytes to take now
    mov %rcx, %rdx
    mov %rsi, %rdi
    mov $'\n', %al
    repne scasb                     # a '\n' among them?
    jne 3f
    mov %rdi, %rdx
    sub %rsi, %rdx                  # RDX = the bytes up to and including it
3:  mov %rdx, %rcx
    mov con_len(%rip), %rdi
    add %rdx, con_len(%rip)
    add $CON_BUF, %rdi
    rep movsb                       # into the buffer; RSI moves on past them
    cmpb $'\n', -1(%rdi)
    je 4f
    cmpq $CON_BUF_SIZE, con_len(%rip)
    jb 1b
4:  push %rsi
    call console_flush              # a whole line, or a full buffer: send it
    pop %rsi
    jmp 1b
9:  ret

# serial_putc: AL = a byte, to the console in use. Clobbers like serial_puts.
serial_putc:
    cmpq $0, console_virtio(%rip)
    je serial_putc_uart
    jmp console_put_byte

# console_put_byte: AL = a byte for the line buffer; the line goes out at '\n' or when the
# buffer is full. Keeps RSI. Clobbers RAX, RCX, RDX, RDI.
console_put_byte:
    mov con_len(%rip), %rcx
    mov %al, CON_BUF(%rcx)
    inc %rcx
    mov %rcx, con_len(%rip)
    cmp $'\n', %al
    je 1f
    cmp $CON_BUF_SIZE, %rcx
    jb 2f
1:  push %rsi
    call console_flush
    pop %rsi
2:  ret

# ANCHOR: console_flush
# console_flush: the line buffer as one transmit buffer — one descriptor, one available ring
# entry, one doorbell — then wait until the device has used it (the buffer is free again).
# Nothing to do without a line, or while the console is the UART. Clobbers RAX, RCX, RDX,
# RSI, RDI.
console_flush:
    cmpq $0, console_virtio(%rip)
    je 9f
    mov con_len(%rip), %rcx
    test %rcx, %rcx
    jz 9f
    movq $CON_BUF, CON_DESC         # descriptor 0: the line, device-readable,
    mov %ecx, CON_DESC + 8          # its length,
    movl $0, CON_DESC + 12          # no flags, no next: the whole chain
    mov con_vq + Q_AVAIL_IDX(%rip), %rax
    mov con_vq + Q_SIZE(%rip), %rdx
    dec %rdx
    and %rax, %rdx
    movw $0, CON_AVAIL + 4(, %rdx, 2)   # avail.ring[idx mod size] = head 0
    inc %rax
    mov %rax, con_vq + Q_AVAIL_IDX(%rip)
    mov %ax, CON_AVAIL + 2          # publish it (x86 keeps the stores in order)
    mfence
    lea con_vq(%rip), %rsi
    VT VT_NOTIFY, con_dev(%rip)     # the doorbell: one exit for the whole line
    movq $0, con_len(%rip)
    mov con_vq + Q_AVAIL_IDX(%rip), %rdx
    mov $CONSOLE_SPINS, %ecx
1:  movzwl CON_USED + 2, %eax       # the device's used index has reached ours:
    cmp %dx, %ax                    # the buffer is back
    je 9f
    pause
    dec %ecx
    jnz 1b
    movq $0, console_virtio(%rip)   # a device that takes nothing: back to the UART
    PRINT "console: the virtio-console did not take a line; back to the UART\n"
9:  ret
# ANCHOR_END: console_flush

# console_init: with console=virtio, find the virtio-console, bring it up and print through
# it from now on; without one (or one that refuses), say so on the UART and stay there.
# Clobbers RAX-RDI, R8-R11.
console_init:
    cmpq $CONSOLE_VIRTIO, console_choice(%rip)
    jne 9f
    mov $VIRTIO_PCI_IDS_CONSOLE, %edi
    lea con_dev(%rip), %rsi
    call virtio_pci_probe           # virtio_pci.S: 1af4:1043 on bus 0?
    test %eax, %eax
    jnz 1f
    mov $VIRTIO_DEVICE_CONSOLE, %edi
    lea con_dev(%rip), %rsi
    call virtio_mmio_probe          # virtio_mmio.S: device ID 3 in a window?
    test %eax, %eax
    jz 8f
1:  lea con_dev(%rip), %rdi
    movabs $(1 << VF_VERSION_1), %rsi
    call virtio_start               # virtio.S: reset ... FEATURES_OK
    test %rax, %rax
    js 7f
    mov $CON_DESC, %edi             # empty rings: flags 0, indices 0
    mov $(CON_BUF - CON_DESC) / 8, %ecx
    xor %eax, %eax
    rep stosq
    movw $VIRTQ_AVAIL_F_NO_INTERRUPT, CON_AVAIL   # the driver polls: no interrupts, please
    mov $CON_QUEUE_WANT, %edi
    lea con_vq(%rip), %rsi
    VT VT_SETUP_QUEUE, con_dev(%rip)
    test %eax, %eax
    jz 6f
    lea con_dev(%rip), %rdi
    call virtio_driver_ok
    movq $0, con_vq + Q_AVAIL_IDX(%rip)
    movq $0, con_len(%rip)
    PRINT "console: virtio-console, "
    VT VT_DESCRIBE, con_dev(%rip)
    PRINT "; the kernel prints there from now on\n"
    movq $1, console_virtio(%rip)
9:  ret
8:  PRINT "console: console=virtio, but no virtio-console was found (PCI 1af4:1043, virtio-mmio device ID 3); staying on the UART (vmscope run kernel --virtio-console)\n"
    ret
7:  PRINT "console: the virtio-console refused VIRTIO_F_VERSION_1; staying on the UART\n"
    ret
6:  PRINT "console: the virtio-console has no usable transmitq; staying on the UART\n"
    ret

# parse_console_option: RSI = a command-line word. RAX = 1 and RSI after the word if it is
# console=uart or console=virtio (cmdline.S calls this for words it does not know), else
# RAX = 0. Clobbers RCX, RDX, RDI.
parse_console_option:
    mov $key_console, %edi
    call starts_with
    jnz 9f
    add $key_console_len, %rsi
    mov $CONSOLE_UART, %edx
    mov $console_name_uart, %edi
    call name_matches
    je 1f
    mov $CONSOLE_VIRTIO, %edx
    mov $console_name_virtio, %edi
    call name_matches
    je 1f
    PRINT "kernel: console= must be uart or virtio\n"
    EXIT EXIT_BAD_CMDLINE
1:  mov %rdx, console_choice(%rip)
    add %rcx, %rsi                  # (name_matches left RCX = the name's length)
    mov $1, %eax
    ret
9:  xor %eax, %eax
    ret

# k_console_write: RDI = n lines, each handed to the console whole (one serial_puts); RAX =
# their checksum. A line costs the kernel about 150 instructions to make, so what the workload
# measures is the console: the UART's two traps per byte, or the virtio-console's one per line.
k_console_write:
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    sub $CONSOLE_LINE + 16, %rsp    # the line and its zero
    mov %rdi, %r12                  # R12 = n
    xor %ebx, %ebx                  # RBX = the line's index
    xor %r15d, %r15d                # R15 = the index mod 26: its first letter
    movabs $FNV_OFFSET, %r13        # R13 = the checksum
    movabs $FNV_PRIME, %r14
    lea hex_digits(%rip), %r8
    movl $0x656E696C, (%rsp)        # "line "
    movb $' ', 4(%rsp)
    movw $0x203A, 13(%rsp)          # ": "
    movw $0x000A, CONSOLE_LINE - 1(%rsp)   # "\n" and the end of the string
1:  cmp %r12, %rbx
    jae 9f
    lea 5(%rsp), %rdi
    mov %ebx, %eax
    mov $8, %ecx
2:  rol $4, %eax                    # the index in hex, most significant digit first
    mov %eax, %edx
    and $0xF, %edx
    movzbl (%r8, %rdx), %edx
    mov %dl, (%rdi)
    inc %rdi
    dec %ecx
    jnz 2b
    lea alphabet(%rip), %rsi        # 48 letters from 'a' + index mod 26 on
    add %r15, %rsi
    xor %ecx, %ecx
3:  mov (%rsi, %rcx), %rax
    mov %rax, 15(%rsp, %rcx)
    add $8, %ecx
    cmp $CONSOLE_LINE - 16, %ecx
    jb 3b
    xor %ecx, %ecx                  # fold the line, a word at a time:
4:  xor (%rsp, %rcx), %r13          # h = (h XOR word) × FNV_PRIME
    imul %r14, %r13
    add $8, %ecx
    cmp $CONSOLE_LINE, %ecx
    jb 4b
    mov %rsp, %rsi
    call serial_puts                # the line, whichever console prints it
    inc %rbx
    inc %r15
    cmp $26, %r15
    jb 1b
    xor %r15d, %r15d
    jmp 1b
9:  mov %r13, %rax
    add $CONSOLE_LINE + 16, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    ret

    .section .rodata
key_console:         .asciz "console="
.set key_console_len, 8
console_name_uart:   .asciz "uart"
console_name_virtio: .asciz "virtio"
hex_digits:          .ascii "0123456789abcdef"
alphabet:            .ascii "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
    .text
