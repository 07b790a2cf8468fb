# hello64.S — a Multiboot kernel that switches itself to 64-bit long mode, takes timer
# interrupts, visits ring 3 and comes back.
# Teaches: 4-level page tables, CR4.PAE + EFER.LME + CR0.PG, the 64-bit GDT/IDT/TSS, the
# 8259 PIC and 8254 PIT, HLT waiting for interrupts, IRETQ to user mode, SYSCALL/SYSRET
# and an INT 0x80 gate that ring 3 may use.
#
# Multiboot can only start a kernel in 32-bit protected mode, so the image is an ELF32 file
# whose entry is 32-bit code; the 64-bit code simply sits in the same file (QEMU's -kernel
# refuses ELF64 files). demo.S includes this file with DEMO set: the same kernel, with a
# running commentary (NARRATE) and a clean CLI; HLT at the end instead of the exit port.
#
# Prints (without DEMO): the greeting, "tick 1" .. "tick 5", "Hello from ring 3!" (for
# ring 3, via SYSCALL), "Back in ring 0." (after INT 0x80), then exits with 0x10.
# Any unexpected exception prints its vector and exits with 0x11.

    .include "pc.inc"
    .include "serial.inc"
    .include "multiboot.inc"

    MULTIBOOT_HEADER

# NARRATE "text" [, sfx] — print only in the demo build.
.macro NARRATE text, sfx=
.ifdef DEMO
    PRINT "\text", \sfx
.endif
.endm

# ---- constants ---------------------------------------------------------------------------
# GDT selectors. The order of 0x18..0x28 is forced by SYSRET, which takes the user selectors
# from one MSR field: CS = base + 16, SS = base + 8 (see setup_syscall).
.set KERNEL_CS,   0x08          # 64-bit code, ring 0
.set KERNEL_DS,   0x10          # data, ring 0
.set USER32_CS,   0x18          # 32-bit code, ring 3 (unused; it only anchors SYSRET's base)
.set USER_DS,     0x20          # data, ring 3
.set USER_CS,     0x28          # 64-bit code, ring 3
.set TSS_SEL,     0x30          # the TSS descriptor (16 bytes in long mode)
.set KERNEL32_CS, 0x40          # 32-bit code, ring 0: used only before the switch
.set RPL3,        3             # requested privilege level bits for ring-3 selectors

# Page-table entry bits (the same in all four levels).
.set PG_P,  1 << 0              # present
.set PG_RW, 1 << 1              # writable
.set PG_US, 1 << 2              # user-accessible (must be set at every level for ring 3)
.set PG_PS, 1 << 7              # in a page-directory entry: a 2 MiB page, no page table

.set CR0_PG,    1 << 31
.set CR4_PAE,   1 << 5
.set MSR_EFER,  0xC0000080      # extended feature enable register
.set EFER_SCE,  1 << 0          # SYSCALL/SYSRET enable
.set EFER_LME,  1 << 8          # long mode enable (takes effect when paging turns on)
.set EFER_NXE,  1 << 11         # no-execute bit usable in page tables
.set MSR_STAR,  0xC0000081      # SYSCALL/SYSRET selectors
.set MSR_LSTAR, 0xC0000082      # SYSCALL entry point in 64-bit mode
.set MSR_FMASK, 0xC0000084      # RFLAGS bits SYSCALL clears
.set RFLAGS_IF, 1 << 9

.set GATE_KERNEL, 0x8E          # present, DPL 0, 64-bit interrupt gate (clears IF)
.set GATE_USER,   0xEE          # the same with DPL 3: INT n from ring 3 allowed
.set TSS_SIZE,    104
.set TICKS_WANTED, 5
.set PIT_DIVISOR, (PIT_HZ + 50) / 100   # 11932: 100 interrupts per second
.set SYS_PRINT,   1             # our only system call: print the string at RDI
.set USER_BASE,   0x200000      # the user-accessible 2 MiB page
.set USER_END,    0x400000

# ==== 32-bit part: what the Multiboot loader gives us =====================================
    .code32
    .text
    .globl _start
_start:
    MULTIBOOT_ENTRY stack_top
    lgdt gdtr                   # a 32-bit LGDT reads a 32-bit base: fine, gdt < 4 GiB
    ljmp $KERNEL32_CS, $1f      # reload CS from our GDT
1:  mov $KERNEL_DS, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs

    call serial_init32
    CHECK_MULTIBOOT_MAGIC 32
    NARRATE "vmscope demo: one small kernel, from the boot loader to user mode and back.\n", 32
    NARRATE "[1] 32-bit protected mode, paging off: this is how the Multiboot loader started us.\n", 32

    # Can this CPU do it? CPUID leaf 0x80000001, EDX: bit 29 long mode, 20 NX, 11 SYSCALL.
    mov $0x80000000, %eax
    cpuid                       # EAX = highest extended leaf
    cmp $0x80000001, %eax
    jb no_long_mode
    mov $0x80000001, %eax
    cpuid
    and $((1 << 29) | (1 << 20) | (1 << 11)), %edx
    cmp $((1 << 29) | (1 << 20) | (1 << 11)), %edx
    jne no_long_mode

    NARRATE "[2] Building 4-level page tables for the first 4 MiB, then CR4.PAE, EFER.LME, CR0.PG.\n", 32
    # Four levels, one entry used in each of the top three: PML4[0] -> PDPT[0] -> PD, and
    # the page directory maps two 2 MiB pages straight away (PS=1), so no page table.
    # 0-2 MiB holds the kernel: supervisor only. 2-4 MiB holds the user program: U/S=1.
    # The CPU ANDs the U/S bits of all levels, so the upper levels say "user" too.
    movl $(pdpt + PG_P + PG_RW + PG_US), pml4
    movl $(page_directory + PG_P + PG_RW + PG_US), pdpt
    movl $(0x000000 + PG_P + PG_RW + PG_PS), page_directory
    movl $(USER_BASE + PG_P + PG_RW + PG_US + PG_PS), page_directory + 8
    mov $pml4, %eax
    mov %eax, %cr3

    mov $CR4_PAE, %eax          # long mode requires PAE-format (64-bit) entries
    mov %eax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $(EFER_LME | EFER_NXE | EFER_SCE), %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PG, %eax
    mov %eax, %cr0              # paging on + LME = long mode active (EFER.LMA = 1), but we
                                # still run 32-bit code: "compatibility mode", CS.L = 0
    ljmp $KERNEL_CS, $long_mode # load a code segment with L = 1: now 64-bit

no_long_mode:
    PRINT "this CPU cannot run 64-bit code (needs long mode, NX and SYSCALL)\n", 32
    EXIT 0x11

    SERIAL_ROUTINES 32          # the print routines assembled as 32-bit code

# ==== 64-bit part ============================================================================
# Memory operands here are written sym(%rip): relative to the next instruction, the usual
# 64-bit addressing. (This ELF32 file cannot even express a 64-bit absolute address; 32-bit
# immediates such as `mov $sym, %eax` are fine, and zero-extend into the full register.)
    .code64
long_mode:
    mov $KERNEL_DS, %ax         # in long mode DS/ES/SS bases are ignored, but SS must
    mov %ax, %ss                # still hold a valid selector (or null) for IRETQ
    mov %ax, %ds
    mov %ax, %es
    mov $stack_top, %esp        # writing ESP zeroes the upper half of RSP

    PRINT "Hello from 64-bit long mode!\n"
.ifdef DEMO
    PRINT "[3] 64-bit long mode. EFER = 0x"
    mov $MSR_EFER, %ecx
    rdmsr
    mov $8, %ecx
    call serial_hex
    PRINT ": the CPU set LMA (bit 10), long mode is active.\n"
.endif

    NARRATE "[4] Loading an IDT (exceptions 0-31, timer 0x20, int 0x80), a TSS and the SYSCALL MSRs.\n"
    call setup_idt
    call setup_tss
    call setup_syscall

    NARRATE "[5] Timer: PIC remapped to vectors 0x20-0x2f, PIT counter 0 at 100 Hz; HLT until 5 ticks.\n"
    call start_timer
    # Sleep until the interrupt handler has counted enough ticks. The test runs with
    # interrupts off; STI takes effect only after the next instruction, so an interrupt
    # arriving between the test and HLT still wakes the HLT instead of being lost.
    cli
wait_for_ticks:
    cmpl $TICKS_WANTED, ticks(%rip)
    jae 2f
    sti
    hlt
    cli
    jmp wait_for_ticks
2:
    NARRATE "[6] IRETQ to ring 3. The user program prints with SYSCALL, then returns with INT 0x80:\n"
    # IRETQ pops RIP, CS, RFLAGS, RSP, SS. Push a frame that "returns" to ring 3: the RPL
    # of the CS selector becomes the new privilege level.
    push $(USER_DS | RPL3)      # SS
    mov $user_stack_top, %eax
    push %rax                   # RSP
    push $RFLAGS_IF             # RFLAGS: interrupts on (bit 1, always 1, is set by the CPU)
    push $(USER_CS | RPL3)      # CS
    mov $user_entry, %eax
    push %rax                   # RIP
    iretq

# ---- the IDT -----------------------------------------------------------------------------
# set_gate: EDI = vector, EAX = handler (below 4 GiB), DL = type/attribute byte.
# A 64-bit gate is 16 bytes; the handler address is scattered over three fields.
set_gate:
    shl $4, %edi
    add $idt, %edi
    mov %ax, (%rdi)             # offset 15:0
    movw $KERNEL_CS, 2(%rdi)    # the code segment the handler runs in
    movb $0, 4(%rdi)            # IST 0: use the normal stack (switching to RSP0 from ring 3)
    mov %dl, 5(%rdi)            # P, DPL, type
    shr $16, %eax
    mov %ax, 6(%rdi)            # offset 31:16
    movl $0, 8(%rdi)            # offset 63:32
    movl $0, 12(%rdi)           # reserved
    ret

setup_idt:
    xor %ebx, %ebx              # vectors 0-31: the CPU's exceptions, one stub each
1:  mov %ebx, %eax
    shl $4, %eax                # stubs are 16 bytes apart
    add $exception_stubs, %eax
    mov %ebx, %edi
    mov $GATE_KERNEL, %dl
    call set_gate
    inc %ebx
    cmp $32, %ebx
    jb 1b
    mov $0x20, %edi             # IRQ 0 (timer), after the PIC remap below
    mov $timer_handler, %eax
    mov $GATE_KERNEL, %dl
    call set_gate
    mov $0x80, %edi             # the system call gate: DPL 3, so ring 3 may INT 0x80
    mov $int80_handler, %eax
    mov $GATE_USER, %dl
    call set_gate
    lidt idtr(%rip)
    ret

# ---- the TSS -----------------------------------------------------------------------------
# In long mode the TSS no longer switches tasks; it holds the stack pointers the CPU loads
# when an interrupt moves it from ring 3 to ring 0 (RSP0). Its descriptor needs the TSS's
# address split into pieces, which only code can do (the linker cannot shift addresses).
setup_tss:
    movl $stack_top, tss + 4(%rip)      # RSP0 (bits 63:32 stay zero)
    movw $TSS_SIZE, tss + 102(%rip)     # I/O bitmap offset past the end: no I/O bitmap
    mov $gdt + TSS_SEL, %edi
    mov $tss, %eax
    movw $(TSS_SIZE - 1), (%rdi)    # limit 15:0
    mov %ax, 2(%rdi)            # base 15:0
    shr $16, %eax
    mov %al, 4(%rdi)            # base 23:16
    movb $0x89, 5(%rdi)         # present, DPL 0, type 9: available 64-bit TSS
    movb $0, 6(%rdi)            # limit 19:16, flags
    mov %ah, 7(%rdi)            # base 31:24
    movl $0, 8(%rdi)            # base 63:32
    movl $0, 12(%rdi)           # reserved
    mov $TSS_SEL, %ax
    ltr %ax                     # load the task register (marks the descriptor busy)
    ret

# ---- SYSCALL -----------------------------------------------------------------------------
setup_syscall:
    mov $MSR_STAR, %ecx         # bits 47:32 = SYSCALL's CS (SS = CS + 8);
    xor %eax, %eax              # bits 63:48 = SYSRET's base (CS = base + 16, SS = base + 8)
    mov $(((USER32_CS | RPL3) << 16) | KERNEL_CS), %edx
    wrmsr
    mov $MSR_LSTAR, %ecx        # where SYSCALL jumps
    mov $syscall_entry, %eax
    xor %edx, %edx
    wrmsr
    mov $MSR_FMASK, %ecx        # RFLAGS bits to clear on entry: TF, IF, DF
    mov $0x700, %eax
    xor %edx, %edx
    wrmsr
    ret

# ---- the timer ---------------------------------------------------------------------------
start_timer:
    # The PIC's power-on vectors 0x08-0x0F collide with CPU exceptions (IRQ 0 would look
    # like a double fault), so re-initialise both chips: ICW1 starts the sequence, ICW2 is
    # the first vector, ICW3 the cascade wiring (slave on master's line 2), ICW4 8086 mode.
    OUTB PIC1_CMD, 0x11
    OUTB PIC2_CMD, 0x11
    OUTB PIC1_DATA, 0x20        # master: IRQ 0-7 -> vectors 0x20-0x27
    OUTB PIC2_DATA, 0x28        # slave: IRQ 8-15 -> vectors 0x28-0x2F
    OUTB PIC1_DATA, 0x04
    OUTB PIC2_DATA, 0x02
    OUTB PIC1_DATA, 0x01
    OUTB PIC2_DATA, 0x01
    OUTB PIC1_DATA, 0xFE        # mask every line except IRQ 0
    OUTB PIC2_DATA, 0xFF
    # PIT counter 0, mode 2 (rate generator): counts down from the divisor, pulses IRQ 0
    # and reloads. Command 0x34 = counter 0, low byte then high byte, mode 2, binary.
    OUTB PIT_MODE, 0x34
    OUTB PIT_CH0, PIT_DIVISOR & 0xFF
    OUTB PIT_CH0, PIT_DIVISOR >> 8
    ret

# IRQ 0. An interrupt may arrive between any two instructions, so the handler saves every
# register it (or serial_*) touches and returns with IRETQ.
timer_handler:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    incl ticks(%rip)
    PRINT "tick "
    mov ticks(%rip), %eax
    call serial_dec
    PRINT "\n"
    cmpl $TICKS_WANTED, ticks(%rip)
    jb 1f
    OUTB PIC1_DATA, 0xFF        # that was the last tick we want: mask IRQ 0 as well, so
                                # the output never depends on how fast the machine is
1:  OUTB PIC1_CMD, PIC_EOI      # tell the PIC we are done, or IRQ 0 never comes again
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    iretq

# ---- the way back from ring 3 ------------------------------------------------------------
# SYSCALL: RCX = the user's RIP, R11 = the user's RFLAGS, CS/SS = kernel selectors, and
# RFLAGS.IF cleared by FMASK. The stack is NOT switched: RSP still points at user memory,
# so the first job is to move onto a kernel stack. (Nothing else uses the kernel stack while
# ring 3 runs, so we can start at its top.)
syscall_entry:
    mov %rsp, user_rsp(%rip)
    mov $stack_top, %esp
    push %rcx
    push %r11
    call do_syscall
    pop %r11
    pop %rcx
    mov user_rsp(%rip), %rsp
    sysretq                     # RIP = RCX, RFLAGS = R11, CS/SS = user selectors

# do_syscall: the system calls themselves. EAX = number, RDI = argument; clobbers RAX, RCX,
# RDX, RSI and RDI (the serial routines' convention).
do_syscall:
    cmp $SYS_PRINT, %eax
    jne 1f
    # Never trust a pointer from user mode: it must point into the user's own page.
    cmp $USER_BASE, %rdi
    jb 1f
    cmp $USER_END, %rdi
    jae 1f
    mov %edi, %esi
    call serial_puts
1:  ret

# INT 0x80 from ring 3: the CPU took RSP0 from the TSS and pushed the user's SS, RSP,
# RFLAGS, CS and RIP there. This kernel has seen enough and never returns to ring 3.
int80_handler:
    PRINT "Back in ring 0.\n"
.ifdef DEMO
    PRINT "[7] Done. Halting with interrupts disabled (CLI; HLT): a clean stop for the VMM.\n"
    HALT_FOREVER
.else
    EXIT 0x10
.endif

# ---- exceptions ----------------------------------------------------------------------------
# One 16-byte stub per vector. Some exceptions push an error code and some do not; the
# stubs push a dummy 0 for the latter so that exception_common sees one layout:
#   (%rsp) vector, 8(%rsp) error code, 16(%rsp) RIP, 24(%rsp) CS, then RFLAGS, RSP, SS.
.macro EXCEPTION_STUB vector
    .balign 16
.if (\vector == 8) || (\vector == 10) || (\vector == 11) || (\vector == 12) || (\vector == 13) || (\vector == 14) || (\vector == 17) || (\vector == 21) || (\vector == 29) || (\vector == 30)
.else
    push $0
.endif
    push $\vector
    jmp exception_common
.endm

    .balign 16
exception_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    EXCEPTION_STUB \v
    .endr

exception_common:
    testb $RPL3, 24(%rsp)       # from ring 3? Then it may be a system call in disguise,
    jz report_exception         # see "PVM" below.
    cmpq $14, (%rsp)
    je pvm_syscall
    cmpq $6, (%rsp)
    je pvm_int80
report_exception:
    PRINT "unexpected exception 0x"
    mov (%rsp), %eax
    mov $2, %ecx
    call serial_hex
    PRINT ", error code 0x"
    mov 8(%rsp), %eax
    mov $8, %ecx
    call serial_hex
    PRINT ", at rip 0x"
    mov 20(%rsp), %eax          # RIP bits 63:32
    mov $8, %ecx
    call serial_hex
    mov 16(%rsp), %eax          # RIP bits 31:0
    mov $8, %ecx
    call serial_hex
    PRINT "\n"
    EXIT 0x11

# ---- PVM: system calls that arrive as faults -----------------------------------------------
# A workaround for one host, not part of the lesson. On PVM (KVM without VT-x; see the
# accel-kvm crate docs) the hypervisor enters guest ring 0 from ring 3 only in its own
# paravirtual way, which an ordinary kernel like this one does not use. Measured there:
#  - SYSCALL from ring 3 sets RCX (return RIP), R11 (RFLAGS), masks RFLAGS and jumps to LSTAR,
#    but stays in ring 3: fetching syscall_entry, a supervisor page, is a user-mode #PF
#    (error code P|U|I/D = 0x15, NXE being on) with RIP = syscall_entry, CS.RPL = 3 in the frame.
#  - INT 0x80 from ring 3 raises #UD on the INT instruction instead of using our DPL-3 gate.
# Both are recognised here and finished as the CPU should have done. Real CPUs, QEMU and
# vmscope's own engines never come this way, so the output is the same everywhere.
.set PF_USER, 1 << 2           # #PF error code: the access came from ring 3
.set RFLAGS_IOPL_RF_VM, (3 << 12) | (1 << 16) | (1 << 17)

# On entry: (%rsp) vector 14, 8(%rsp) error code, then the frame RIP, CS, RFLAGS, RSP, SS.
pvm_syscall:
    cmpl $syscall_entry, 16(%rsp)   # at the SYSCALL entry point? (RIP bits 31:0 ...
    jne report_exception
    cmpl $0, 20(%rsp)               # ... and 63:32; RAX, the call number, stays untouched)
    jne report_exception
    testb $PF_USER, 8(%rsp)         # a user-mode access? (RIP there means: a fetch)
    jz report_exception
    add $16, %rsp               # drop vector and error code: an IRETQ frame remains
    mov %rcx, (%rsp)            # return where SYSRETQ would: RIP = RCX,
    mov %r11, 16(%rsp)          # RFLAGS = R11 (but never let ring 3 raise its IOPL)
    andq $~RFLAGS_IOPL_RF_VM, 16(%rsp)
    push %rcx                   # SYSRETQ leaves RCX and R11 as SYSCALL set them
    push %r11
    call do_syscall
    pop %r11
    pop %rcx
    iretq                       # back to ring 3, after the SYSCALL

# On entry: (%rsp) vector 6, 8(%rsp) a dummy error code, then the frame.
pvm_int80:
    push %rax
    mov 24(%rsp), %rax          # the RIP of the invalid instruction
    cmp $USER_BASE, %rax        # read it only inside the user's page
    jb 1f
    cmp $USER_END - 2, %rax
    ja 1f
    cmpw $0x80CD, (%rax)        # the bytes CD 80: INT 0x80
    jne 1f
    pop %rax
    addq $2, 16(%rsp)           # INT returns after itself, a fault before: skip it
    add $16, %rsp               # drop vector and error code: now the frame INT 0x80 pushes
    jmp int80_handler
1:  pop %rax
    jmp report_exception

    SERIAL_ROUTINES             # the print routines again, as 64-bit code

# ==== ring 3 ==============================================================================
# Linked at 2 MiB (link/multiboot.ld), inside the only page with U/S=1. From here the
# kernel's memory is out of reach: touching it would be a page fault.
    .section .user_text, "ax"
user_entry:
    mov $SYS_PRINT, %eax
    mov $user_message, %edi
    syscall                     # into the kernel and back (SYSRET)
    int $0x80                   # into the kernel for good
    jmp user_entry              # not reached

    .section .user_data, "aw"
user_message:
    .asciz "Hello from ring 3!\n"
    .balign 16
    .skip 1024
user_stack_top:

# ==== kernel data ===========================================================================
    .data
    .balign 8
gdt:
    .quad 0                     # 0x00: the null descriptor
    .quad 0x00AF9A000000FFFF    # 0x08: kernel code, L=1 (64-bit)
    .quad 0x00CF92000000FFFF    # 0x10: kernel data
    .quad 0x00CFFA000000FFFF    # 0x18: user code, 32-bit, DPL 3
    .quad 0x00CFF2000000FFFF    # 0x20: user data, DPL 3
    .quad 0x00AFFA000000FFFF    # 0x28: user code, L=1, DPL 3
    .quad 0, 0                  # 0x30: TSS descriptor, filled in by setup_tss
    .quad 0x00CF9A000000FFFF    # 0x40: kernel code, 32-bit
gdt_end:
gdtr:
    .word gdt_end - gdt - 1
    .long gdt, 0                # 64-bit base (LGDT in 32-bit code reads the low half)
idtr:
    .word 256 * 16 - 1
    .long idt, 0

    .bss
    .balign 4096
pml4:           .skip 4096
pdpt:           .skip 4096
page_directory: .skip 4096
idt:            .skip 256 * 16
tss:            .skip TSS_SIZE
    .balign 8
ticks:          .skip 4         # timer interrupts seen so far
    .balign 8
user_rsp:       .skip 8         # the user's RSP while a system call runs
    .balign 16
                .skip 8192
stack_top:
