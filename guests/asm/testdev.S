# testdev.S — a guest that checks QEMU's test devices from the inside: pc-testdev and pci-testdev.
# Teaches: how a test kernel talks to a harness device — port widths and offsets, device memory,
# an interrupt line pulled by a port write, and a PCI function found by its IDs and driven
# through the BARs the firmware (or the board) placed.
#
# Run it with the devices (`vmscope run testdev --device pc-testdev --device pci-testdev`, or
# QEMU's `-device pc-testdev -device pci-testdev`) and both print the same lines:
#
#     pc-testdev: scratch 1122, at 0xe1 2233, byte window beef3344, iomem f0, irq 5 requested
#     pci-testdev: found
#     mmio-no-eventfd 3
#     mmio-wildcard-eventfd 4       (the wildcard test also counts the one odd value)
#     ...
#
# Without them it says "absent" for each. 32-bit protected mode, paging off (the device memory
# at 0xFF000000 and the BARs are reached at their physical addresses). Exits with 0x10.

    .include "pc.inc"
    .include "serial.inc"
    .include "multiboot.inc"
    .include "gdt32.inc"

    MULTIBOOT_HEADER

.set PCI_ADDRESS, 0xCF8
.set PCI_DATA, 0xCFC
.set PCI_TESTDEV_ID, 0x00051B36     # device 0005, vendor 1b36 (Red Hat)
.set TESTDEV_IOMEM, 0xFF000000

    .code32
    .text
    .globl _start
_start:
    MULTIBOOT_ENTRY stack_top
    LOAD_FLAT_GDT
    call serial_init
    CHECK_MULTIBOOT_MAGIC
    call check_pc_testdev
    call check_pci_testdev
    EXIT 0x10

# ---- pc-testdev -----------------------------------------------------------------------
check_pc_testdev:
    PRINT "pc-testdev: "
    mov $0xE0, %dx              # present? the scratch register keeps what it is given
    mov $0x5A5AA5A5, %eax
    out %eax, %dx
    in %dx, %eax
    cmp $0x5A5AA5A5, %eax
    je 1f
    PRINT "absent\n"
    ret
1:  mov $0x11223344, %eax
    out %eax, %dx
    PRINT "scratch "
    mov $0xE2, %dx              # a word from byte 2 up
    in %dx, %ax
    movzwl %ax, %eax
    mov $4, %ecx
    call serial_hex
    PRINT ", at 0xe1 "
    mov $0xE1, %dx              # a word from byte 1 up
    in %dx, %ax
    movzwl %ax, %eax
    mov $4, %ecx
    call serial_hex
    PRINT ", byte window "
    mov $0xEA, %dx              # the byte window: this word becomes two byte writes
    mov $0xBEEF, %ax
    out %ax, %dx
    mov $0xE8, %dx
    in %dx, %eax
    mov $8, %ecx
    call serial_hex
    PRINT ", iomem "
    movl $0xCAFEF00D, TESTDEV_IOMEM + 0x10
    movzbl TESTDEV_IOMEM + 0x11, %eax
    mov $2, %ecx
    call serial_hex
    PRINT ", irq 5 "
    mov $0x2005, %dx            # drive ISA IRQ 5 high...
    mov $1, %al
    out %al, %dx
    mov $0x0A, %al              # OCW3: the next read of the command port returns the IRR
    out %al, $PIC1_CMD
    in $PIC1_CMD, %al
    mov %al, %bl
    mov $0x2005, %dx            # ...and let it go again
    xor %al, %al
    out %al, %dx
    test $0x20, %bl
    jz 2f
    PRINT "requested\n"
    ret
2:  PRINT "not requested\n"
    ret

# ---- pci-testdev ----------------------------------------------------------------------
# pci_config_read: EAX = config address (bus 0, slot, offset) → EAX = the dword there.
pci_config_read:
    or $0x80000000, %eax
    mov $PCI_ADDRESS, %dx
    out %eax, %dx
    mov $PCI_DATA, %dx
    in %dx, %eax
    ret

check_pci_testdev:
    PRINT "pci-testdev: "
    xor %ebx, %ebx              # EBX = slot << 11, slots 0..31 of bus 0
1:  mov %ebx, %eax
    call pci_config_read
    cmp $PCI_TESTDEV_ID, %eax
    je 2f
    add $(1 << 11), %ebx
    cmp $(32 << 11), %ebx
    jb 1b
    PRINT "absent\n"
    ret
2:  PRINT "found\n"
    lea 0x10(%ebx), %eax        # BAR 0: memory
    call pci_config_read
    and $~0xF, %eax
    mov %eax, bar_mem
    lea 0x14(%ebx), %eax        # BAR 1: I/O ports
    call pci_config_read
    and $~3, %eax
    mov %eax, bar_io
    lea 0x04(%ebx), %eax        # command register: decode memory and I/O
    or $0x80000000, %eax
    mov $PCI_ADDRESS, %dx
    out %eax, %dx
    mov $PCI_DATA, %dx
    in %dx, %ax
    or $3, %ax
    out %ax, %dx
    movl $0, use_io             # the memory BAR's tests, then the I/O BAR's
    call run_tests
    movl $1, use_io
    call run_tests
    ret

# hdr_read: EAX = offset into the BAR → EAX = the byte there (memory or I/O BAR per use_io).
hdr_read:
    cmpl $0, use_io
    jne 1f
    add bar_mem, %eax
    movzbl (%eax), %eax
    ret
1:  add bar_io, %eax
    mov %ax, %dx
    in %dx, %al
    movzbl %al, %eax
    ret

# hdr_write: EAX = offset, CL = value: one byte write into the BAR.
hdr_write:
    cmpl $0, use_io
    jne 1f
    add bar_mem, %eax
    mov %cl, (%eax)
    ret
1:  add bar_io, %eax
    mov %ax, %dx
    mov %cl, %al
    out %al, %dx
    ret

# hdr_dword: EAX = offset → EAX = the little-endian dword there, read a byte at a time.
hdr_dword:
    push %ebx
    push %ebp
    mov %eax, %ebp
    xor %ebx, %ebx
    lea 3(%ebp), %eax
    call hdr_read
    mov %eax, %ebx
    lea 2(%ebp), %eax
    call hdr_read
    shl $8, %ebx
    or %eax, %ebx
    lea 1(%ebp), %eax
    call hdr_read
    shl $8, %ebx
    or %eax, %ebx
    mov %ebp, %eax
    call hdr_read
    shl $8, %ebx
    or %ebx, %eax
    pop %ebp
    pop %ebx
    ret

# run_tests: tests 0, 1, … of the selected BAR until one reports a width it does not know.
# Each: the matching value three times and another value once, then the count.
run_tests:
    push %ebx
    push %ebp
    xor %ebx, %ebx              # EBX = test number
1:  xor %eax, %eax              # select test EBX
    mov %bl, %cl
    call hdr_write
    mov $1, %eax                # its width: 1, 2 or 4, else no such test
    call hdr_read
    cmp $1, %eax
    jne 9f
    mov $4, %eax                # where to write
    call hdr_dword
    mov %eax, %ebp
    mov $8, %eax                # what to write
    call hdr_read
    mov %eax, test_data
    mov $3, %edi
2:  push %edi
    mov %ebp, %eax
    mov test_data, %ecx
    call hdr_write
    pop %edi
    dec %edi
    jnz 2b
    mov %ebp, %eax
    mov test_data, %ecx
    xor $1, %cl                 # a value only the wildcard test counts
    call hdr_write
    # The name, copied out of the header (an I/O BAR cannot be read with LODSB).
    xor %edi, %edi
3:  lea 16(%edi), %eax
    push %edi
    call hdr_read
    pop %edi
    mov %al, name_buffer(%edi)
    inc %edi
    test %al, %al
    jz 4f
    cmp $63, %edi
    jb 3b
    movb $0, name_buffer(%edi)
4:  mov $name_buffer, %esi
    call serial_puts
    PRINT " "
    mov $12, %eax               # the count
    call hdr_dword
    call serial_dec
    PRINT "\n"
    inc %ebx
    cmp $16, %ebx
    jb 1b
9:  pop %ebp
    pop %ebx
    ret

    SERIAL_ROUTINES

    .bss
    .balign 4
bar_mem:    .long 0
bar_io:     .long 0
use_io:     .long 0
test_data:  .long 0
name_buffer: .skip 64
    .skip 4096
stack_top:
