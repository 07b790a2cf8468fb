# boot64.S — the assembly a C kernel needs before its first C function: Multiboot entry in
# 32-bit protected mode, identity paging for the first 1 GiB, long mode, a stack, `kmain`.
# Teaches: how little has to be assembly. Everything after `call kmain` is gcc's output.
#
# Assembled with `as --64`; the entry is `.code32` because Multiboot starts kernels in 32-bit
# protected mode. The linked ELF64 is converted to ELF32 (objcopy) so that Multiboot loaders,
# QEMU's -kernel among them, accept it.

    .include "multiboot.inc"
    MULTIBOOT_HEADER

.set CR0_PG,   1 << 31
.set CR4_PAE,  1 << 5
.set MSR_EFER, 0xC0000080
.set EFER_LME, 1 << 8

    .section .text.boot, "ax"
    .code32
    .globl _start
_start:
    cli
    mov $boot_stack_top, %esp
    # PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB, present + writable + large.
    mov $pdpt + 3, %eax
    mov %eax, pml4
    mov $pd + 3, %eax
    mov %eax, pdpt
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, pd(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jne 1b
    mov $pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PG, %eax
    mov %eax, %cr0
    lgdt gdt_pointer
    ljmp $0x08, $long_mode

    .code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $boot_stack_top, %rsp
    mov %ebx, %edi                  # kmain(the Multiboot information's address)
    call kmain
    # kmain returns the value for isa-debug-exit.
    out %al, $0xF4
    hlt

    .section .rodata
    .balign 8
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        # 0x08: 64-bit code, ring 0
    .quad 0x00CF92000000FFFF        # 0x10: data, ring 0
gdt_pointer:
    .word gdt_pointer - gdt - 1
    .long gdt

    .section .bss
    .balign 4096
pml4: .skip 4096
pdpt: .skip 4096
pd:   .skip 4096
    .skip 16384
boot_stack_top:
