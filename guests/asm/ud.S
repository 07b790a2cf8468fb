# ud.S — a Multiboot kernel that runs an instruction the CPU may not know, and catches #UD.
# Teaches: building a 32-bit IDT, interrupt gates, and how an exception handler finds the
# faulting instruction: for a fault, the EIP the CPU pushes points AT the instruction (not
# after it), so the handler could fix things up and retry.
#
# The probe is FSIN (x87 sine). CPUs with an x87 execute it — real ones, QEMU, and vmscope's
# engines since the interpreter has one: the kernel then prints "fsin executed without #UD"
# and exits with 0x12. On a CPU without it (CPUID.1:EDX.FPU clear) it raises #UD (vector 6)
# and the handler prints "caught #UD at 0x<address>" and exits with 0x10. To see the #UD
# path, assemble with --defsym PROBE_UD2=1: the probe becomes UD2 (the official "undefined
# instruction", same length, same address).

    .include "pc.inc"
    .include "serial.inc"
    .include "multiboot.inc"
    .include "gdt32.inc"

    MULTIBOOT_HEADER

.set CR0_EM, 1 << 2             # "emulate x87": x87 instructions would raise #NM (vector 7)
.set CR0_TS, 1 << 3             # "task switched": the same, lazily
.set GATE32_KERNEL, 0x8E        # present, DPL 0, 32-bit interrupt gate

    .code32
    .text
# The probe comes first in .text so its address is fixed by the linker script alone:
# the Multiboot header (12 bytes) at 0x100000, .text at the next 16-byte boundary, 0x100010.
    .balign 16
probe:
.ifdef PROBE_UD2
    ud2
.else
    fsin                        # sine of ST(0); our stack is empty, which x87 only flags
.endif
    PRINT "fsin executed without #UD\n"
    EXIT 0x12

    .globl _start
_start:
    MULTIBOOT_ENTRY stack_top
    LOAD_FLAT_GDT
    call serial_init
    CHECK_MULTIBOOT_MAGIC

    # An x87 instruction with CR0.EM or CR0.TS set raises #NM, not #UD: clear both so only
    # the CPU's ability decides. (Multiboot leaves CR0 bits other than PE and PG undefined.)
    mov %cr0, %eax
    and $~(CR0_EM | CR0_TS), %eax
    mov %eax, %cr0

    # A 32-bit gate is 8 bytes: offset 15:0, selector, zero, type/attributes, offset 31:16.
    # Only vector 6 gets one; the other 255 stay zero, "not present".
    mov $ud_handler, %eax
    mov $(idt + 6 * 8), %edi
    mov %ax, (%edi)
    movw $CODE_SEL, 2(%edi)
    movb $0, 4(%edi)
    movb $GATE32_KERNEL, 5(%edi)
    shr $16, %eax
    mov %ax, 6(%edi)
    lidt idtr
    jmp probe

# #UD handler. #UD pushes no error code, so the stack holds EIP, CS, EFLAGS.
ud_handler:
    PRINT "caught #UD at 0x"
    mov (%esp), %eax
    mov $8, %ecx
    call serial_hex
    PRINT "\n"
    EXIT 0x10

    SERIAL_ROUTINES

    .data
    .balign 8
idtr:
    .word 256 * 8 - 1
    .long idt

    .bss
    .balign 8
idt:
    .skip 256 * 8
    .balign 16
    .skip 4096
stack_top:
