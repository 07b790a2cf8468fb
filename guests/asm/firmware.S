# firmware.S — vmscope's boot firmware: from the reset vector in real mode to a Multiboot kernel.
# Teaches: what a BIOS/boot loader does before a kernel runs — leave real mode through a GDT and
# CR0.PE, build the flat 4 GiB segments Multiboot promises, then jump with EAX/EBX as the contract.
#
# `vmscope run KERNEL --boot firmware` (and the GUI's default for Multiboot kernels) loads the
# kernel's segments and the Multiboot information structure into RAM exactly as a direct boot
# does, then installs this 64 KiB ROM with a *parameter block* patched in (see below) and starts
# the CPU at its RESET state: real mode, CS = F000 with a hidden base of 0xFFFF0000, IP = FFF0.
# The journey a student can single-step:
#
#   F000:FFF0  far jump into the ROM's copy below 1 MiB (CS base becomes 0xF0000)
#   real mode  CLI, clear CR0.CD/NW (caches on), LGDT: the table lives in this ROM
#   CR0.PE=1   protected mode — but CS still holds its real-mode cache until the far jump
#   ljmpl      to selector 0x10: flat 32-bit code; then DS/ES/SS/FS/GS = 0x18, flat data
#   handoff    EAX = 0x2BADB002, EBX = the information structure, jump to the kernel's entry
#
# The parameter block sits at ROM offset 0xFFE0 (physical 0xFFFE0 and 0xFFFFFFE0), 16 bytes
# before the reset vector: 8 bytes "VMSCBOOT", the kernel entry (u32), the information
# structure's address (u32). The host loader (emulator::machine::loader::firmware_boot) checks
# the magic and writes the two numbers; an unpatched ROM (entry 0) says so on the serial port
# and exits with 0x13, "not started by a Multiboot loader". The selectors match what a direct
# boot leaves in CS (0x10) and DS/SS (0x18), so a kernel sees the same numbers either way.
# A20: vmscope's chipset has no A20 gate (addresses above 1 MiB always work), so there is no
# port 0x92 dance here. The firmware prints nothing when it succeeds: the serial output of a
# firmware boot is the kernel's alone, byte for byte what a direct boot prints.

    .include "pc.inc"
    .include "serial.inc"

.set ROM_BASE, 0xF0000          # where the ROM's copy below 1 MiB starts (segment F000)
.set CODE32, 0x10               # GDT selectors (index * 8): flat 32-bit code ...
.set DATA32, 0x18               # ... and flat 32-bit data
.set MULTIBOOT_MAGIC, 0x2BADB002
.set CR0_PE, 1 << 0             # protection enable
.set CR0_NW_CD, 3 << 29         # "not write-through" and "cache disable", set at RESET

    .code16
    .section .text, "ax"
start:
    cli                         # no IDT, no IVT handlers: interrupts must stay off
    cld
    cmpl $0, %cs:param_entry    # did the host loader give us a kernel?
    je no_kernel

    mov %cr0, %eax
    and $~CR0_NW_CD, %eax       # turn the caches on, as every BIOS does early
    mov %eax, %cr0

    # LGDT reads a 6-byte operand: 16-bit limit, then the base. With a 16-bit operand size
    # only 24 bits of the base are loaded, so use the 32-bit form (LGDTL). The operand is at
    # CS:gdt_descriptor — in real mode the ROM is addressed through CS.
    lgdtl %cs:gdt_descriptor

    mov %cr0, %eax
    or $CR0_PE, %eax            # protected mode from the next instruction on ...
    mov %eax, %cr0
    # ... but CS still holds the real-mode segment cache (base 0xF0000, 16-bit). Only a far
    # jump reloads it from the GDT. The 32-bit offset form (LJMPL) reaches the flat address.
    ljmpl $CODE32, $(ROM_BASE + protected32)

no_kernel:
    xor %ax, %ax
    mov %ax, %ss                # a stack for the CALLs below: 0000:7000, ordinary RAM
    mov $0x7000, %sp
    mov %cs, %ax
    mov %ax, %ds                # PRINT's strings are in this ROM (DS:SI)
    call serial_init
    PRINT "vmscope firmware: no kernel to start (try: vmscope run KERNEL --boot firmware)\n"
    EXIT 0x13

    SERIAL_ROUTINES

    .code32
protected32:
    mov $DATA32, %ax            # every data segment flat: base 0, limit 4 GiB
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov ROM_BASE + param_info, %ebx      # EBX = the Multiboot information structure
    mov ROM_BASE + param_entry, %ecx
    mov $MULTIBOOT_MAGIC, %eax           # EAX = "a Multiboot loader started you"
    jmp *%ecx                            # the kernel; we never come back

    .section .rodata, "a"
    .p2align 3
# The GDT: 8-byte descriptors. Entry 1 stays null so that the selectors are 0x10 and 0x18.
gdt:
    .quad 0                     # 0x00: the null descriptor (loading it into CS faults)
    .quad 0                     # 0x08: unused
    .quad 0x00CF9A000000FFFF    # 0x10: code, base 0, limit 0xFFFFF pages (4 GiB), 32-bit, ring 0
    .quad 0x00CF92000000FFFF    # 0x18: data, base 0, limit 4 GiB, writable, ring 0
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1     # limit: size - 1
    .long ROM_BASE + gdt        # base: a linear address

# The parameter block the host loader patches (see the header and link/rom.ld).
    .section .params, "a"
    .ascii "VMSCBOOT"
param_entry:
    .long 0                     # the kernel's entry point (0: no kernel)
param_info:
    .long 0                     # the Multiboot information structure's address

# The reset vector, 16 bytes before the end of the ROM: jump to the real start.
    .section .reset, "ax"
    .code16                     # (the 32-bit part above left the assembler in .code32)
reset_vector:
    ljmp $0xF000, $start
