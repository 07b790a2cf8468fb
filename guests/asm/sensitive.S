# sensitive.S — why classic x86 could not be virtualized by trap-and-emulate alone.
# Teaches: Popek and Goldberg's condition — every sensitive instruction must be privileged —
# and the x86 instructions that break it: run deprivileged in ring 3, a guest kernel's CLI,
# STI and LGDT trap to the VMM, but SGDT, SIDT, SLDT, STR, SMSW, PUSHF, POPF, LAR and a MOV
# from CS run without a trap and show the real machine instead of the virtual one.
#
# The roles: ring 0 (user64.inc plus gp_handler below) plays a trap-and-emulate VMM; ring 3
# (user_main) plays the guest kernel it deprivileged, with IOPL 0 so that CLI/STI trap. The
# VMM keeps the guest's virtual IF and virtual GDTR in memory and emulates the instructions
# that trap (#GP) by updating them. Each probe names the address to resume at, so an
# instruction that traps where it should not (UMIP) is reported rather than fatal.
#
# vmscope's CPU model does not offer UMIP (CPUID.7:ECX bit 2), so on interp and bt nothing
# sensitive traps. Under KVM the ring-3 part runs on the host CPU: see the book's chapter
# "Trap and emulate" and `guests::SENSITIVE_TEXT` for what each engine prints.
# Exit: 0x10.

.set USER_IOPL, 0               # CPL 3 > IOPL 0: CLI, STI and POPF's IF are privileged
.set GP_HANDLER, 1              # every #GP comes to gp_handler (the VMM's trap handler)
    .include "user64.inc"

.set RFLAGS_IF, 1 << 9
.set GUEST_GDT_BASE, 0x00300000 # where the guest kernel "puts" its GDT (never used)
.set GUEST_GDT_LIMIT, 0x007f

# ==== ring 0: the VMM =========================================================================
    .text
kernel_setup:
    ret

kernel_call:                    # no UD2 kernel calls in this guest
    ret

# ANCHOR: vmm_trap
# gp_handler: a #GP from the deprivileged guest. Emulate what we know (CLI, STI, LGDT (%rdi)),
# count the trap and resume at the probe's resume address. Frame after our PUSH RAX:
# 8(%rsp) saved RBX, 16 error code, 24 RIP, 32 CS, 40 RFLAGS, 48 RSP, 56 SS.
gp_handler:
    push %rax
    testb $3, 32(%rsp)          # only traps from the guest (ring 3)
    jz gp_unexpected
    cmpq $0, resume_rip(%rip)   # and only inside a probe
    je gp_unexpected
    incl traps(%rip)
    movb $1, trapped(%rip)
    mov 24(%rsp), %rbx          # the instruction that trapped
    cmpb $0xFA, (%rbx)          # CLI: the guest wants interrupts off
    jne 1f
    movb $0, virtual_if(%rip)
    jmp 9f
1:  cmpb $0xFB, (%rbx)          # STI
    jne 2f
    movb $1, virtual_if(%rip)
    jmp 9f
2:  cmpw $0x010F, (%rbx)        # 0F 01 17 = LGDT (%rdi): remember the guest's GDTR
    jne 9f
    cmpb $0x17, 2(%rbx)
    jne 9f
    mov (%rdi), %rax
    mov %rax, virtual_gdtr(%rip)
    movw 8(%rdi), %ax
    movw %ax, virtual_gdtr + 8(%rip)
9:  mov resume_rip(%rip), %rax  # continue after the instruction
    mov %rax, 24(%rsp)
    movq $0, resume_rip(%rip)
    pop %rax
    pop %rbx
    add $8, %rsp                # the error code
    iretq
# ANCHOR_END: vmm_trap
gp_unexpected:
    pop %rax
    jmp unexpected

# ==== ring 3: the deprivileged guest kernel ===================================================
# PROBE insn — run one instruction; if it traps, the VMM resumes after it and sets `trapped`.
.macro PROBE insn:vararg
    lea .Lresume\@(%rip), %rax
    mov %rax, resume_rip(%rip)
    movb $0, trapped(%rip)
    incl probes(%rip)
    \insn
.Lresume\@:
    movq $0, resume_rip(%rip)
    call outcome
.endm

user_main:
    PRINT "sensitive: a guest kernel deprivileged to ring 3 (IOPL 0); ring 0 is the VMM\n"
    PRINT "privileged instructions trap, and the VMM emulates them:\n"
# ANCHOR: privileged
    PRINT "  cli        "
    PROBE cli
    PRINT "the guest's virtual IF is now "
    movzbl virtual_if(%rip), %eax
    call serial_dec
    PRINT "\n  sti        "
    PROBE sti
    PRINT "the guest's virtual IF is now "
    movzbl virtual_if(%rip), %eax
    call serial_dec
    PRINT "\n  lgdt       "
    lea guest_gdtr(%rip), %rdi
    PROBE lgdt (%rdi)
    PRINT "the guest's virtual GDTR is now "
    lea virtual_gdtr(%rip), %rbx
    call print_dtr
# ANCHOR_END: privileged
    PRINT "\nsensitive but not privileged: no trap, and the real machine shows through:\n"
# ANCHOR: sensitive
    PRINT "  mov %cs    "
    PROBE mov %cs, %bx
    PRINT "CS = 0x"
    movzwl %bx, %eax
    mov $4, %ecx
    call serial_hex
    PRINT ", RPL "
    movzwl %bx, %eax
    and $3, %eax
    call serial_dec
    PRINT ": the kernel sees it is not in ring 0\n  sgdt       "
    PROBE sgdt seen_dtr(%rip)
    lea seen_dtr(%rip), %rbx
    call print_dtr
    PRINT ", not what the guest loaded\n  sidt       "
    PROBE sidt seen_dtr(%rip)
    lea seen_dtr(%rip), %rbx
    call print_dtr
    PRINT "\n  sldt       "
    movw $0xFFFF, seen_sel(%rip)
    PROBE sldt seen_sel(%rip)
    PRINT "LDTR = 0x"
    call print_seen_sel
    PRINT "\n  str        "
    movw $0xFFFF, seen_sel(%rip)
    PROBE str seen_sel(%rip)
    PRINT "TR = 0x"
    call print_seen_sel
    PRINT "\n  smsw       "
    movw $0xFFFF, seen_sel(%rip)
    PROBE smsw seen_sel(%rip)
    PRINT "CR0[15:0] = 0x"
    call print_seen_sel
    PRINT "\n  lar %cs    "
    mov %cs, %bx
    PROBE lar %bx, %ebx
    # Access rights bits 15:8 = P, DPL, S, type. Only P and DPL are printed: the type's
    # accessed bit differs (QEMU's TCG does not set it when IRETQ loads CS; CPUs do), and
    # bits 19:16 (limit 19:16) are reported by some CPUs and masked by others.
    PRINT "descriptor present "
    mov %ebx, %eax
    shr $15, %eax
    and $1, %eax
    call serial_dec
    PRINT ", DPL "
    mov %ebx, %eax
    shr $13, %eax
    and $3, %eax
    call serial_dec
    PRINT "\n  pushf      "
    PROBE pushf
    pop %rbx
    call print_if_iopl
    PRINT " although the guest's STI set its virtual IF to 1\n  popf IF=1  "
    pushf
    orq $RFLAGS_IF, (%rsp)
    PROBE popf
    pushf
    pop %rbx
    call print_if_iopl
    PRINT ": the change was dropped silently\n"
# ANCHOR_END: sensitive
    PRINT "the VMM saw "
    mov traps(%rip), %eax
    call serial_dec
    PRINT " traps in "
    mov probes(%rip), %eax
    call serial_dec
    PRINT " probes\n"
    EXIT 0x10

# outcome: print whether the last probe trapped.
outcome:
    cmpb $0, trapped(%rip)
    je 1f
    PRINT "#GP, the VMM emulates it: "
    ret
1:  PRINT "no trap: "
    ret

# print_dtr: RBX = a 10-byte descriptor-table register image (limit, 64-bit base).
print_dtr:
    PRINT "base 0x"
    mov 6(%rbx), %eax
    mov $8, %ecx
    call serial_hex
    mov 2(%rbx), %eax
    mov $8, %ecx
    call serial_hex
    PRINT " limit 0x"
    movzwl (%rbx), %eax
    mov $4, %ecx
    call serial_hex
    ret

print_seen_sel:
    movzwl seen_sel(%rip), %eax
    mov $4, %ecx
    call serial_hex
    ret

# print_if_iopl: RBX = RFLAGS as PUSHF stored it.
print_if_iopl:
    PRINT "RFLAGS.IF = "
    mov %ebx, %eax
    shr $9, %eax
    and $1, %eax
    call serial_dec
    PRINT ", IOPL = "
    mov %ebx, %eax
    shr $12, %eax
    and $3, %eax
    call serial_dec
    ret

# ==== data ===================================================================================
    .data
    .balign 8
resume_rip:   .quad 0           # where the VMM resumes a trapped probe (0 = not in a probe)
traps:        .long 0
probes:       .long 0
trapped:      .byte 0
virtual_if:   .byte 1           # the guest believes interrupts are on until it says otherwise
    .balign 8
guest_gdtr:   .word GUEST_GDT_LIMIT     # what the guest kernel asks LGDT to load
              .quad GUEST_GDT_BASE
    .balign 8
virtual_gdtr: .word 0, 0, 0, 0, 0       # the VMM's record of the guest's GDTR
    .balign 8
seen_dtr:     .word 0, 0, 0, 0, 0       # what SGDT/SIDT stored
seen_sel:     .word 0
