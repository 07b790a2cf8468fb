# triple-fault.S — a Multiboot kernel that crashes the machine on purpose.
# Teaches: how exceptions escalate. INT3 needs IDT entry 3; an IDT with limit 0 has no
# entries, so looking it up raises #GP; the #GP handler (entry 13) cannot be found either,
# which is a double fault (#DF, entry 8); when even that fails the CPU gives up: a "triple
# fault", which resets a real PC (QEMU with -no-reboot exits instead; a VMM sees a shutdown).
# Prints one line; nothing runs after the INT3.

    .include "pc.inc"
    .include "serial.inc"
    .include "multiboot.inc"
    .include "gdt32.inc"

    MULTIBOOT_HEADER

    .code32
    .text
    .globl _start
_start:
    MULTIBOOT_ENTRY stack_top
    LOAD_FLAT_GDT
    call serial_init
    CHECK_MULTIBOOT_MAGIC
    PRINT "about to triple fault\n"

    lidt empty_idtr             # base 0, limit 0: not a single 8-byte gate fits
    int3                        # #BP -> #GP -> #DF -> triple fault
    PRINT "still alive?!\n"     # never printed on a correct CPU
    EXIT 0x12

    SERIAL_ROUTINES

    .data
    .balign 8
empty_idtr:
    .word 0                     # limit
    .long 0                     # base

    .bss
    .balign 16
    .skip 4096
stack_top:
