# hello-real.S — a 64 KiB firmware ROM: the first code a PC runs after power-on.
# Teaches: the reset vector at F000:FFF0, real-mode segments (address = segment * 16 +
# offset), setting up a stack, and the interrupt vector table (IVT) that INT n goes through.
#
# At reset the CPU is in real mode with CS = F000 but a hidden CS base of 0xFFFF0000, so
# its first fetch comes from 0xFFFFFFF0, the top of the 4 GiB address space, where the
# chipset maps this ROM. The far jump there reloads CS properly; from then on we run from
# the copy of the ROM at 0xF0000-0xFFFFF, below 1 MiB, like any real-mode code.
# Prints two lines and exits with 0x10 through the debug-exit port.

    .include "pc.inc"
    .include "serial.inc"

.set VECTOR, 0x60               # INT 0x60-0x66 are left free "for user programs" on a PC
.set STACK_TOP, 0x7000          # 0000:7000, ordinary RAM (the ROM itself is read-only)

    .code16
    .section .text, "ax"
start:
    cli                         # no interrupt handlers exist yet
    cld
    xor %ax, %ax
    mov %ax, %ss                # SS:SP = 0000:7000; the stack grows down from there
    mov $STACK_TOP, %sp
    mov %ax, %es                # ES = 0000, the segment of the IVT
    mov %cs, %ax
    mov %ax, %ds                # DS = F000: our strings live in this ROM

    call serial_init

    # The IVT is 256 four-byte entries at physical address 0: entry n holds the offset and
    # then the segment of the handler for INT n. Install ours for vector 0x60.
    movw $print_service, %es:(VECTOR * 4)
    movw %cs, %es:(VECTOR * 4 + 2)

    # Use it like a BIOS service: the caller passes a string in DS:SI. INT pushes FLAGS, CS
    # and IP on our stack, looks up entry 0x60 and jumps there; IRET comes back.
    mov $hello, %si
    int $VECTOR

    # Show where the vector lives and what it holds, read back from the table itself.
    PRINT "INT 0x60 went through the IVT entry at 0000:"
    mov $(VECTOR * 4), %eax     # computed: each entry is 4 bytes
    mov $4, %ecx
    call serial_hex
    PRINT " -> handler at "
    movzwl %es:(VECTOR * 4 + 2), %eax
    mov $4, %ecx
    call serial_hex
    PRINT ":"
    movzwl %es:(VECTOR * 4), %eax
    mov $4, %ecx
    call serial_hex
    PRINT "\n"

    EXIT 0x10

    SERIAL_ROUTINES

    .section .rodata, "a"
hello:
    .asciz "Hello from real mode!\n"

# The handler for INT 0x60, at the fixed offset 0x8000 (see link/rom.ld): print DS:SI.
# An interrupt handler must leave every register as it found it.
    .section .isr, "ax"
print_service:
    pushal                      # save all eight 32-bit general registers
    movzwl %si, %esi            # the routines take a 32-bit ESI; LODSB uses SI here
    call serial_puts
    popal
    iret                        # pop IP, CS and FLAGS

# The reset vector, 16 bytes before the end of the ROM: jump to the real start.
    .section .reset, "ax"
reset_vector:
    ljmp $0xF000, $start
