# smc.S — self-modifying code: a program that rewrites its own instructions while it runs.
# Teaches: which code patches an x86 CPU must notice, and so what any emulator that caches
# decoded or translated code (vmscope's decode cache, a binary translator) must invalidate.
#
# The rule (Intel SDM vol. 3, "Self-Modifying Code"): a store into code takes effect for the
# next execution of the modified bytes; the portable pattern is "store, then branch, then
# run the new code". Current CPUs also notice a store into the very next instructions
# without a branch (they check in-flight instructions against stores); cases a2 and d3 rely
# on that, and QEMU (TCG), KVM on a real CPU and vmscope's interpreter agree on them.
#
# Every case runs its self-modifying code, folds what it computes into a checksum (EBX),
# computes the same checksum with ordinary code that never patches anything (EBP), and
# prints "ok" when they agree. The cases:
#   a1-a4  patches inside the block being executed: an immediate after a store + JMP, the
#          immediate of the next instruction, the loop's own first instruction (taken by the
#          back edge), and an instruction that adds its own immediate to itself;
#   b      a hot function (called thousands of times, so surely cached or translated) whose
#          opcode, JMP target and Jcc condition are patched between rounds of calls;
#   c      data in the same page, even the same cache line, as a running loop: stores that
#          must NOT change what runs (an emulator must stay correct, and should not thrash);
#   d1-d4  REP MOVSB copying code over code: over a hot function, over the instructions
#          right after the REP MOVSB (with and without a JMP), and a 5 KiB function spanning
#          pages, copied forwards and backwards (DF=1);
#   e      an instruction that straddles two pages, patched only in its second page;
#   f      code patched by stores that are not MOVs: PUSH (RSP pointed into code), STOSQ,
#          XCHG, LOCK CMPXCHG and BTC — a translator must check every kind of write.
# Runs in ring 3 (see user64.inc for why). Exit: 0x10 if every case agrees, 0x18 if not.

    .include "user64.inc"

.set FNV_PRIME, 0x01000193
.set GOLDEN,    0x9E3779B9      # a constant with well-mixed bits

# MIX src, acc: acc = (acc ^ src) * FNV prime — a cheap checksum in which order matters.
.macro MIX src, acc
    xor \src, \acc
    imul $FNV_PRIME, \acc, \acc
.endm

# REPORT "text": print the case's line, compare EBX (patched code) with EBP (reference).
.macro REPORT text
    .pushsection .rodata
.Lcase\@: .asciz "\text"
    .popsection
    mov $.Lcase\@, %esi
    call report
.endm

    .text
kernel_setup:                   # nothing to add to the boot: the identity map is enough
    ret
kernel_call:                    # no kernel calls in this guest
    ret

# ==== ring 3 =================================================================================
user_main:
    PRINT "smc: self-modifying code in 64-bit ring 3\n"
    call case_a1
    call case_a2
    call case_a3
    call case_a4
    call case_b
    call case_c
    call case_d1
    call case_d2
    call case_d3
    call case_d4
    call case_e
    call case_f
    PRINT "smc: 12 cases, "
    mov failures(%rip), %eax
    call serial_dec
    PRINT " failed\n"
    cmpl $0, failures(%rip)
    jne 1f
    EXIT 0x10                   # OUT from ring 3: allowed because IOPL = 3
1:  EXIT 0x18

# report: ESI = text, EBX = checksum of the self-modifying run, EBP = the reference.
report:
    call serial_puts
    PRINT ": 0x"
    mov %ebx, %eax
    mov $8, %ecx
    call serial_hex
    cmp %ebx, %ebp
    jne 1f
    PRINT " ok\n"
    ret
1:  incl failures(%rip)
    PRINT " FAIL, reference 0x"
    mov %ebp, %eax
    mov $8, %ecx
    call serial_hex
    PRINT "\n"
    ret

# ---- a: patches inside the block that is running ----------------------------------------------
.set A_PASSES, 1000

# a1: each pass stores a new immediate into the MOV below, jumps to it and uses its value.
# The JMP is the SDM's recipe; a translator that follows jumps into one long block must
# still see the store.
case_a1:
    xor %ebx, %ebx
    mov $A_PASSES, %ecx
1:  imul $GOLDEN, %ecx, %eax
    mov %eax, a1_mov + 1(%rip)  # the MOV's immediate starts after its opcode byte (BA)
    jmp a1_mov
a1_mov:
    mov $0, %edx                # BA imm32: MOV EDX, imm32 — the value stored just now
    MIX %edx, %ebx
    dec %ecx
    jnz 1b
    xor %ebp, %ebp              # reference: the same values, no patching
    mov $A_PASSES, %ecx
2:  imul $GOLDEN, %ecx, %edx
    MIX %edx, %ebp
    dec %ecx
    jnz 2b
    REPORT "a1 store into a MOV's immediate, JMP to it (1000 passes)"
    ret

# a2: the same without the JMP: the patched MOV is the very next instruction after the store.
# An emulator that decoded or translated the whole block before running it must notice that
# the store hit the block and stop using the old bytes at once.
case_a2:
    xor %ebx, %ebx
    mov $A_PASSES, %ecx
1:  imul $GOLDEN, %ecx, %eax
    add $12345, %eax
    mov %eax, a2_mov + 1(%rip)
a2_mov:
    mov $0, %edx                # runs right after the store that changed it
    MIX %edx, %ebx
    dec %ecx
    jnz 1b
    xor %ebp, %ebp
    mov $A_PASSES, %ecx
2:  imul $GOLDEN, %ecx, %edx
    add $12345, %edx
    MIX %edx, %ebp
    dec %ecx
    jnz 2b
    REPORT "a2 store into the next instruction, no branch (1000 passes)"
    ret

# a3: the block patches its own first instruction; the loop's back edge re-enters the block.
# A translated block chained to itself must be unchained (or re-checked) when it is written.
case_a3:
    xor %ebx, %ebx
    mov $A_PASSES, %ecx
1:
a3_mov:
    mov $0x13579BDF, %edx       # the first pass sees this; later ones what the last stored
    MIX %edx, %ebx
    imul $GOLDEN, %ecx, %eax
    mov %eax, a3_mov + 1(%rip)
    dec %ecx
    jnz 1b
    xor %ebp, %ebp
    mov $0x13579BDF, %edx
    mov $A_PASSES, %ecx
2:  MIX %edx, %ebp
    imul $GOLDEN, %ecx, %edx
    dec %ecx
    jnz 2b
    REPORT "a3 store into the loop's first instruction (1000 passes)"
    ret

# a4: ADD m32, imm32 whose memory operand is its own immediate: each run doubles it. The
# instruction uses the immediate it was decoded with; the next run sees the sum. A second
# store nudges the immediate so it never becomes 0.
.set A4_PASSES, 64
case_a4:
    xor %ebx, %ebx
    mov $A4_PASSES, %ecx
1:
a4_add:
    addl $0x01234567, a4_add + 6(%rip)  # 81 05 disp32 imm32: the immediate is at +6
    mov a4_add + 6(%rip), %edx
    MIX %edx, %ebx
    add %ecx, a4_add + 6(%rip)
    dec %ecx
    jnz 1b
    xor %ebp, %ebp
    mov $0x01234567, %edx
    mov $A4_PASSES, %ecx
2:  add %edx, %edx
    MIX %edx, %ebp
    add %ecx, %edx
    dec %ecx
    jnz 2b
    REPORT "a4 an ADD that rewrites its own immediate (64 passes)"
    ret

# ---- b: patching a hot function -----------------------------------------------------------------
# b_func (EDI = x, result in EAX) has three patch sites: the opcode of its ALU instruction
# (ADD/SUB/XOR EAX, imm32), the target of its JMP (one of four tails), and, in tail 3, the
# condition of a Jcc (JZ/JNZ). Each round patches all three, then calls b_func B_CALLS times.
.set B_ROUNDS, 24               # 3 opcodes x 4 targets x 2 conditions, each pairing once
.set B_CALLS,  300
.set B_IMM,    0x5BD1E995

case_b:
    xor %ebx, %ebx
    xor %r12d, %r12d            # R12 = round
1:  mov %r12d, %eax             # opcode: b_ops[round % 3]
    xor %edx, %edx
    mov $3, %ecx
    div %ecx
    lea b_ops(%rip), %rax
    movzbl (%rax,%rdx), %eax
    mov %al, b_op(%rip)
    mov %r12d, %eax             # JMP target: b_targets[round % 4], as rel32 from b_jmp + 5
    and $3, %eax
    lea b_targets(%rip), %rdx
    mov (%rdx,%rax,4), %eax
    sub $(b_jmp + 5), %eax
    mov %eax, b_jmp + 1(%rip)
    mov %r12d, %eax             # Jcc: JZ (0x74) in rounds 0-3, 8-11, ..., else JNZ (0x75)
    shr $2, %eax
    and $1, %eax
    add $0x74, %eax
    mov %al, b_cond(%rip)
    xor %r13d, %r13d            # R13 = x
2:  mov %r13d, %edi
    add %r12d, %edi
    call b_func                 # CALL is the branch after the stores
    MIX %eax, %ebx
    inc %r13d
    cmp $B_CALLS, %r13d
    jb 2b
    inc %r12d
    cmp $B_ROUNDS, %r12d
    jb 1b

    xor %ebp, %ebp              # reference: b_ref computes what the patched b_func should
    xor %r12d, %r12d
3:  xor %r13d, %r13d
4:  mov %r13d, %edi
    add %r12d, %edi
    call b_ref
    MIX %eax, %ebp
    inc %r13d
    cmp $B_CALLS, %r13d
    jb 4b
    inc %r12d
    cmp $B_ROUNDS, %r12d
    jb 3b
    REPORT "b  opcode, JMP target and Jcc of a hot function patched (24 rounds x 300 calls)"
    ret

# The patched function. Its bytes are written out so the patch sites are plain to see.
b_func:
    mov %edi, %eax
b_op:
    .byte 0x05                  # 05 = ADD EAX, imm32; 2D = SUB; 35 = XOR
    .long B_IMM
b_jmp:
    .byte 0xE9                  # JMP rel32 (rel32 = target - address after the JMP)
    .long b_t0 - (b_jmp + 5)
b_t0:
    rol $5, %eax
    ret
b_t1:
    imul $0x2545F491, %eax, %eax
    ret
b_t2:
    not %eax
    ret
b_t3:
    test $1, %edi
b_cond:
    .byte 0x74, b_t3_end - (b_cond + 2)     # 74 = JZ rel8, 75 = JNZ rel8
    bswap %eax
b_t3_end:
    ret

# b_ref: EDI = x, R12D = round; what b_func computes after round R12's patches.
b_ref:
    mov %r12d, %eax
    xor %edx, %edx
    mov $3, %ecx
    div %ecx                    # EDX = round % 3: the opcode
    mov %edi, %eax
    cmp $1, %edx
    jb 1f
    je 2f
    xor $B_IMM, %eax
    jmp 3f
1:  add $B_IMM, %eax
    jmp 3f
2:  sub $B_IMM, %eax
3:  mov %r12d, %ecx             # round % 4: the tail
    and $3, %ecx
    cmp $1, %ecx
    jb 4f
    je 5f
    cmp $2, %ecx
    je 6f
    mov %edi, %ecx              # tail 3: BSWAP when the Jcc falls through:
    and $1, %ecx                # JZ falls through when bit 0 of x is 1,
    mov %r12d, %edx             # JNZ when it is 0
    shr $2, %edx
    and $1, %edx
    xor %edx, %ecx
    jz 7f
    bswap %eax
7:  ret
4:  rol $5, %eax
    ret
5:  imul $0x2545F491, %eax, %eax
    ret
6:  not %eax
    ret

# ---- c: data in the code page -------------------------------------------------------------------
# The loop below stores into three words of its own page: one right after its last
# instruction (the same 64-byte cache line), one between two of its instructions (jumped
# over, never executed), one 2 KiB away. None of them is code, so nothing may change in what
# runs. An emulator that throws away all translations of a page on any write to it stays
# correct but retranslates this loop 300,000 times; finer tracking avoids that.
.set C_PASSES, 100000

case_c:
    mov $C_PASSES, %ecx
    call c_loop
    xor %ebx, %ebx
    MIX c_near(%rip), %ebx
    MIX c_between(%rip), %ebx
    MIX c_far(%rip), %ebx
    xor %esi, %esi              # reference: the same sums in registers
    xor %edi, %edi
    xor %r8d, %r8d
    mov $C_PASSES, %ecx
1:  add %ecx, %esi
    sub %ecx, %edi
    xor %ecx, %r8d
    dec %ecx
    jnz 1b
    xor %ebp, %ebp
    MIX %esi, %ebp
    MIX %edi, %ebp
    MIX %r8d, %ebp
    REPORT "c  stores to data in the running loop's page and cache line (100000 passes)"
    ret

    .balign 4096
c_loop:                         # ECX = passes
1:  add %ecx, c_near(%rip)
    sub %ecx, c_between(%rip)
    jmp 2f
c_between:
    .long 0                     # data between two instructions of the loop
2:  xor %ecx, c_far(%rip)
    dec %ecx
    jnz 1b
    ret
c_near:
    .long 0                     # data right after the code, in its cache line
    .balign 2048
c_far:
    .long 0                     # data in the same page, far from the code
    .balign 4096

# ---- d: REP MOVSB copies code over code -----------------------------------------------------------
# d1: four 16-byte templates (position-independent: no relative jumps out) are copied in
# turn over d_slot, a function called 300 times per round.
.set D_ROUNDS, 16
.set D_CALLS,  300

case_d1:
    xor %ebx, %ebx
    xor %r12d, %r12d            # R12 = round
1:  mov %r12d, %esi             # RSI = d_templates + 16 * (round % 4)
    and $3, %esi
    shl $4, %esi
    add $d_templates, %esi
    mov $d_slot, %edi
    mov $16, %ecx
    rep movsb                   # the new function, over the old one
    xor %r13d, %r13d
2:  lea (%r13, %r12), %edi
    call d_slot
    MIX %eax, %ebx
    inc %r13d
    cmp $D_CALLS, %r13d
    jb 2b
    inc %r12d
    cmp $D_ROUNDS, %r12d
    jb 1b

    xor %ebp, %ebp
    xor %r12d, %r12d
3:  xor %r13d, %r13d
4:  lea (%r13, %r12), %edi
    mov %r12d, %ecx
    and $3, %ecx
    call d1_ref
    MIX %eax, %ebp
    inc %r13d
    cmp $D_CALLS, %r13d
    jb 4b
    inc %r12d
    cmp $D_ROUNDS, %r12d
    jb 3b
    REPORT "d1 REP MOVSB of 4 templates over a hot function (16 rounds x 300 calls)"
    ret

# d1_ref: EDI = x, ECX = template number; what that template computes.
d1_ref:
    cmp $1, %ecx
    jb 1f
    je 2f
    cmp $2, %ecx
    je 3f
    mov %edi, %eax
    rol $13, %eax
    not %eax
    ret
1:  lea 7(%rdi, %rdi, 2), %eax
    ret
2:  mov %edi, %eax
    xor $0x7F4A7C15, %eax
    ret
3:  imul $0x2C1B3C6D, %edi, %eax
    ret

    .balign 16
d_templates:                    # EDI = x, result in EAX; each padded to 16 bytes with INT3
    lea 7(%rdi, %rdi, 2), %eax
    ret
    .balign 16, 0xCC
    mov %edi, %eax
    xor $0x7F4A7C15, %eax
    ret
    .balign 16, 0xCC
    imul $0x2C1B3C6D, %edi, %eax
    ret
    .balign 16, 0xCC
    mov %edi, %eax
    rol $13, %eax
    not %eax
    ret
    .balign 16, 0xCC
d_slot:                         # the function the templates are copied over
    xor %eax, %eax
    ret
    .balign 16, 0xCC

# d2/d3: each pass copies one of two 5-byte templates over the instruction(s) that follow the
# REP MOVSB: "MOV EDX, imm32" (one instruction) or "LEA EDX, [R8 + 7]; NOP" (two, with
# other boundaries). d2 jumps to them (the SDM's recipe), d3 falls straight into them.
.set D2_PASSES, 64

case_d2:
    xor %ebx, %ebx
    xor %r13d, %r13d
1:  mov %r13d, %esi
    and $1, %esi
    imul $5, %esi, %esi
    add $d2_templates, %esi
    mov $d2_site, %edi
    mov $5, %ecx
    mov %r13d, %r8d             # x, for the copied code (EDI is the copy's destination)
    rep movsb
    jmp d2_site
d2_site:
    mov $0, %edx                # 5 bytes, replaced before they run
    MIX %edx, %ebx
    inc %r13d
    cmp $D2_PASSES, %r13d
    jb 1b
    call d23_reference
    REPORT "d2 REP MOVSB over the next instructions, then JMP (64 passes)"
    ret

case_d3:
    xor %ebx, %ebx
    xor %r13d, %r13d
1:  mov %r13d, %esi
    and $1, %esi
    imul $5, %esi, %esi
    add $d3_templates, %esi
    mov $d3_site, %edi
    mov $5, %ecx
    mov %r13d, %r8d
    rep movsb
d3_site:
    mov $0, %edx                # 5 bytes, replaced by the REP MOVSB just before
    MIX %edx, %ebx
    inc %r13d
    cmp $D2_PASSES, %r13d
    jb 1b
    call d23_reference
    REPORT "d3 REP MOVSB over the next instructions, no branch (64 passes)"
    ret

# The templates read x from R8D (EDI is taken by REP MOVSB).
d2_templates:
d3_templates:
    mov $0xA5A55A5A, %edx       # BA imm32: 5 bytes, one instruction
    lea 7(%r8), %edx            # 41 8D 50 07: 4 bytes ...
    nop                         # ... + 1: two instructions, other boundaries

# d23_reference: EBP = the checksum d2/d3 should give.
d23_reference:
    xor %ebp, %ebp
    xor %r13d, %r13d
1:  mov $0xA5A55A5A, %edx
    test $1, %r13d
    jz 2f
    lea 7(%r13), %edx
2:  MIX %edx, %ebp
    inc %r13d
    cmp $D2_PASSES, %r13d
    jb 1b
    ret

# ---- d4: a 5 KiB function, copied over with REP MOVSB, forwards and backwards --------------
# Three bodies of 1000 five-byte units plus RET (5001 bytes, so d_big spans two or three
# pages): the original "SUB EAX, 1; ROR EAX, 1" (3 + 2 bytes), copy A "ADD EAX, 3; ROL EAX, 1"
# (3 + 2) and copy B "LEA EAX, [RAX*4 + RAX + 0x11]; CMC" (4 + 1: other instruction
# boundaries). Calls: the original, A (forwards), B (backwards, DF=1), A (backwards), B
# (forwards). EAX = the round number on entry.
.set BIG_UNITS, 1000
.set BIG_SIZE,  BIG_UNITS * 5 + 1

case_d4:
    xor %ebx, %ebx
    xor %eax, %eax
    call d_big                  # round 0: the original body
    MIX %eax, %ebx
    mov $1, %r12d               # R12 = round 1..4
1:  mov $d_big_a, %esi          # odd rounds copy A, even ones B
    test $1, %r12d
    jnz 2f
    mov $d_big_b, %esi
2:  mov $d_big, %edi
    mov $BIG_SIZE, %ecx
    cmp $2, %r12d               # rounds 2 and 3 copy backwards: from the last byte down
    jb 3f
    cmp $3, %r12d
    ja 3f
    add $(BIG_SIZE - 1), %esi
    add $(BIG_SIZE - 1), %edi
    std
3:  rep movsb
    cld
    mov %r12d, %eax
    call d_big
    MIX %eax, %ebx
    inc %r12d
    cmp $5, %r12d
    jb 1b

    xor %ebp, %ebp              # reference: the three bodies as loops
    xor %eax, %eax
    mov $BIG_UNITS, %ecx
4:  sub $1, %eax
    ror $1, %eax
    loop 4b
    MIX %eax, %ebp
    mov $1, %r12d
5:  mov %r12d, %eax
    mov $BIG_UNITS, %ecx
    test $1, %r12d
    jz 7f
6:  add $3, %eax                # A
    rol $1, %eax
    loop 6b
    jmp 8f
7:  lea 0x11(%rax, %rax, 4), %eax   # B
    loop 7b
8:  MIX %eax, %ebp
    inc %r12d
    cmp $5, %r12d
    jb 5b
    REPORT "d4 5001-byte function over pages replaced by REP MOVSB, up and down (DF=1)"
    ret

d_big:
    .rept BIG_UNITS
    sub $1, %eax
    ror $1, %eax
    .endr
    ret
d_big_a:
    .rept BIG_UNITS
    add $3, %eax
    rol $1, %eax
    .endr
    ret
d_big_b:
    .rept BIG_UNITS
    lea 0x11(%rax, %rax, 4), %eax
    cmc
    .endr
    ret
d_big_end:

# ---- e: an instruction across a page boundary ----------------------------------------------------
# e_mov (MOV EDX, imm32) starts 3 bytes before a page boundary: opcode and the immediate's
# low two bytes in one page, its high two bytes in the next. After a first full store, each
# pass stores only the high half — a write to the second page alone. A cache that files the
# instruction under the page it starts in must still drop it.
.set E_PASSES, 1000

case_e:
    movl $0x5A5A5A5A, e_mov + 1(%rip)   # all four bytes once: low half 0x5A5A from now on
    xor %ebx, %ebx
    mov $E_PASSES, %ecx
    jmp e_loop

    .balign 4096
e_page:
e_loop:
    imul $GOLDEN, %ecx, %eax
    shr $16, %eax
    mov %ax, e_mov + 3(%rip)    # bytes 3-4 of the MOV: in the second page only
    jmp e_mov                   # store, branch, run
    .org e_page + 4096 - 3, 0xCC
e_mov:
    mov $0, %edx                # BA | imm32 low half | page boundary | imm32 high half
    MIX %edx, %ebx
    dec %ecx
    jnz e_loop
    xor %ebp, %ebp              # reference
    mov $E_PASSES, %ecx
1:  imul $GOLDEN, %ecx, %edx
    and $0xFFFF0000, %edx
    or $0x5A5A, %edx
    MIX %edx, %ebp
    dec %ecx
    jnz 1b
    REPORT "e  an instruction across a page boundary, patched in its second page (1000 passes)"
    ret

# ---- f: stores that are not MOVs ---------------------------------------------------------------------
# f_mov is MOV RDX, imm64 (48 BA imm64): the immediate is the 8 bytes at f_mov + 2. Pass r
# writes it with instruction kind r % 5, then jumps to f_mov:
#   0 PUSH RAX with RSP = f_mov + 10 (the stack pointer aimed into code for one instruction)
#   1 STOSQ with RDI = f_mov + 2      2 XCHG RAX, [f_mov + 2]
#   3 LOCK CMPXCHG [f_mov + 2], RCX   4 BTC [f_mov + 2], r % 64 (flips one bit)
# Kinds 0-3 store r * GOLDEN (sign-extended to 64 bits), kind 4 flips a bit of what is there.
.set F_PASSES, 200

case_f:
    xor %ebx, %ebx
    xor %r12d, %r12d            # R12 = pass
1:  imul $-0x61C88647, %r12, %rax   # RAX = r * GOLDEN, sign-extended (kinds 0-3)
    mov %r12d, %ecx
    imul $0xCCCD, %ecx, %ecx    # ECX = pass % 5, by multiplying (pass < 5 * 13107)
    shr $18, %ecx               # ECX = pass / 5
    lea (%rcx, %rcx, 4), %ecx
    neg %ecx
    add %r12d, %ecx
    cmp $1, %ecx
    jb 10f
    je 11f
    cmp $3, %ecx
    jb 12f
    je 13f
    mov %r12d, %ecx             # 4: BTC with the bit number in a register
    and $63, %ecx
    btc %rcx, f_mov + 2(%rip)
    jmp 19f
10: mov %rsp, %r13              # 0: PUSH into code
    lea f_mov + 10(%rip), %rsp
    push %rax
    mov %r13, %rsp
    jmp 19f
11: lea f_mov + 2(%rip), %rdi   # 1: STOSQ
    stosq
    jmp 19f
12: xchg %rax, f_mov + 2(%rip)  # 2: XCHG (locked by itself)
    jmp 19f
13: mov %rax, %rcx              # 3: LOCK CMPXCHG; RAX = the current value, so it succeeds
    mov f_mov + 2(%rip), %rax
    lock cmpxchg %rcx, f_mov + 2(%rip)
19: jmp f_mov                   # store, branch, run
f_mov:
    movabs $0, %rdx
    MIX %edx, %ebx              # both halves into the checksum
    shr $32, %rdx
    MIX %edx, %ebx
    inc %r12d
    cmp $F_PASSES, %r12d
    jb 1b

    xor %ebp, %ebp              # reference: RDX holds the immediate
    xor %edx, %edx
    xor %r12d, %r12d
2:  mov %r12d, %eax
    xor %ecx, %ecx
    mov $5, %esi
    push %rdx
    xor %edx, %edx
    div %esi                    # EDX = pass % 5
    mov %edx, %ecx
    pop %rdx
    cmp $4, %ecx
    je 3f
    imul $-0x61C88647, %r12, %rdx
    jmp 4f
3:  mov %r12d, %ecx
    and $63, %ecx
    btc %rcx, %rdx
4:  mov %rdx, %rax
    MIX %eax, %ebp
    shr $32, %rax
    MIX %eax, %ebp
    inc %r12d
    cmp $F_PASSES, %r12d
    jb 2b
    REPORT "f  code patched by PUSH, STOSQ, XCHG, LOCK CMPXCHG and BTC (200 passes)"
    ret

    .section .rodata
b_ops:
    .byte 0x05, 0x2D, 0x35      # ADD, SUB, XOR EAX, imm32
    .balign 4
b_targets:
    .long b_t0, b_t1, b_t2, b_t3

    .bss
    .balign 4
failures:   .skip 4
