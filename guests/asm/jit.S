# jit.S — a tiny JIT compiler: machine code generated at run time, run, then overwritten.
# Teaches: what a JIT (or a dynamic loader) does to memory — write code, then call it — and
# why an emulator must track code by PHYSICAL address: here one buffer has two virtual names.
#
# The buffer jit_buf (16 KiB, identity-mapped) is also mapped at ALIAS = 0x40000000, page by
# page in reverse order (alias page 0 = buffer page 3). Writing through one name and running
# through the other is "cross-modifying" as far as any cache keyed by virtual address knows.
#
# Cases; each folds its results into a checksum (EBX) and compares it with a reference (EBP)
# computed without running generated code, then prints "ok" or "FAIL":
#   1  512 functions (3 random operations on EAX each: ADD/SUB/XOR/IMUL/ROL/LEA/NOT/BSWAP)
#      generated into 32-byte slots, then called; 8 rounds regenerate them in place with new
#      operations and lengths, written and run through either mapping, generated all first or
#      each just before its call. The reference is an interpreter of the same 3 operations.
#   2  the same bytes run at two virtual addresses: LEA RAX, [RIP - 7] returns each its own;
#   3  one virtual page switched between two physical pages of code (PTE write + INVLPG, by
#      a kernel call), rewritten through that page, run through both names;
#   4  a chain of 64 generated blocks (ADD EAX, imm32; JMP to the next), called again and
#      again while single blocks in the middle are rewritten: block chaining must notice;
#   5  an instruction across two virtual pages whose second page is remapped (its bytes
#      there change, its first page and its start address do not);
#   6  only with the word "pte-in-code" on the command line: a page-table entry that is also
#      the immediate of an instruction, so the CPU's own page walk (setting the accessed and
#      dirty bits) modifies code. QEMU and KVM run the new bytes. vmscope's interpreter does
#      not yet (its page walker's A/D writes bypass the decode cache's write tracking), so the
#      case is left out of the default run: `vmscope run jit --cmdline pte-in-code`.
# Runs in ring 3 (see user64.inc for why). Exit: 0x10 if every case agrees, 0x18 if not.

    .include "user64.inc"

.set FNV_PRIME, 0x01000193
.set GOLDEN,    0x9E3779B9
.set ALIAS,     0x40000000      # PDPT[1] -> pd_alias -> pt_alias: 4 KiB pages
.set REMAP_VA,  ALIAS + 4 * 4096    # pt_alias[4]: switched between remap_a and remap_b
.set BUF_PAGES, 4
.set PTE_FLAGS, PG_P | PG_RW | PG_US
.set KCALL_REMAP, 1             # kernel call: point REMAP_VA at the page RDI, INVLPG

.macro MIX src, acc
    xor \src, \acc
    imul $FNV_PRIME, \acc, \acc
.endm

.macro REPORT text
    .pushsection .rodata
.Lcase\@: .asciz "\text"
    .popsection
    mov $.Lcase\@, %esi
    call report
.endm

# ==== ring 0: the alias mapping and the one kernel call ======================================
    .text
kernel_setup:
    movl $(pd_alias + PTE_FLAGS), pdpt + 8(%rip)    # 1 GiB..2 GiB
    movl $(pt_alias + PTE_FLAGS), pd_alias(%rip)    # its first 2 MiB: 4 KiB pages
    movl $(jit_buf + 3 * 4096 + PTE_FLAGS), pt_alias + 0 * 8(%rip)   # reversed order
    movl $(jit_buf + 2 * 4096 + PTE_FLAGS), pt_alias + 1 * 8(%rip)
    movl $(jit_buf + 1 * 4096 + PTE_FLAGS), pt_alias + 2 * 8(%rip)
    movl $(jit_buf + 0 * 4096 + PTE_FLAGS), pt_alias + 3 * 8(%rip)
    movl $(remap_a + PTE_FLAGS), pt_alias + 4 * 8(%rip)
    movl $(pt_code + PTE_FLAGS), pd_alias + 8(%rip)     # 1 GiB + 2 MiB: case 6's table
    ret

# kernel_call (from UD2 in ring 3): RAX = request. Clobbers RAX only.
kernel_call:
    cmp $KCALL_REMAP, %eax
    jne 1f
    mov %rdi, %rax
    or $PTE_FLAGS, %rax
    mov %rax, pt_alias + 4 * 8(%rip)
    mov $REMAP_VA, %eax
    invlpg (%rax)               # the CPU may still hold the old translation: drop it
1:  ret

# ==== ring 3 =================================================================================
user_main:
    PRINT "jit: code generated at run time in 64-bit ring 3, through two mappings\n"
    call case_1
    call case_2
    call case_3
    call case_4
    call case_5
    mov $opt_pte_in_code, %esi
    call cmdline_has
    test %eax, %eax
    jz 1f
    call case_6
1:  PRINT "jit: "
    mov cases(%rip), %eax
    call serial_dec
    PRINT " cases, "
    mov failures(%rip), %eax
    call serial_dec
    PRINT " failed\n"
    cmpl $0, failures(%rip)
    jne 2f
    EXIT 0x10
2:  EXIT 0x18

# report: ESI = text, EBX = checksum of the generated code's results, EBP = the reference.
report:
    incl cases(%rip)
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

# alias_of: RAX = an address in jit_buf; returns the same byte's address in the alias.
alias_of:
    sub $jit_buf, %eax
    mov %eax, %ecx
    and $0xFFF, %ecx            # offset in the page stays
    shr $12, %eax               # buffer page p -> alias page 3 - p
    neg %eax
    add $(BUF_PAGES - 1), %eax
    shl $12, %eax
    lea ALIAS(%rax, %rcx), %eax
    ret

# ---- case 1: generate, call, regenerate --------------------------------------------------------
.set NFUNCS,  512               # 32-byte slots: the whole 16 KiB buffer
.set ROUNDS1, 8
.set NOPS,    3                 # operations per function

# A function is "MOV EAX, EDI", three operations, "RET": 2 + up to 3 x 7 + 1 = 24 bytes.
# Each operation is (op, imm); op_table gives its encoding: length of the fixed bytes, size
# of the immediate (0, 1 or 4), then the fixed bytes.
    .section .rodata
    .balign 8
op_table:
    .byte 1, 4, 0x05, 0, 0, 0, 0, 0     # 0: ADD EAX, imm32
    .byte 1, 4, 0x2D, 0, 0, 0, 0, 0     # 1: SUB EAX, imm32
    .byte 1, 4, 0x35, 0, 0, 0, 0, 0     # 2: XOR EAX, imm32
    .byte 2, 4, 0x69, 0xC0, 0, 0, 0, 0  # 3: IMUL EAX, EAX, imm32
    .byte 2, 1, 0xC1, 0xC0, 0, 0, 0, 0  # 4: ROL EAX, imm8 (the CPU uses imm8 & 31)
    .byte 3, 4, 0x8D, 0x84, 0x38, 0, 0, 0   # 5: LEA EAX, [RAX + RDI + disp32]
    .byte 2, 0, 0xF7, 0xD0, 0, 0, 0, 0  # 6: NOT EAX
    .byte 2, 0, 0x0F, 0xC8, 0, 0, 0, 0  # 7: BSWAP EAX
    .text

# Round r: bit 0 = write through the alias, bit 1 = call through the alias, bit 2 = generate
# each function just before calling it (else all 512 first, then all calls).
case_1:
    xor %ebx, %ebx
    xor %ebp, %ebp
    xor %r12d, %r12d            # R12 = round
1:  imul $GOLDEN, %r12d, %r14d  # R14 = the random generator's state, seeded by the round
    inc %r14d
    test $4, %r12d
    jnz 3f
    xor %r13d, %r13d            # generate all, then call all
2:  call generate
    inc %r13d
    cmp $NFUNCS, %r13d
    jb 2b
    xor %r13d, %r13d
4:  call call_and_check
    inc %r13d
    cmp $NFUNCS, %r13d
    jb 4b
    jmp 5f
3:  xor %r13d, %r13d            # generate one, call it, next
6:  call generate
    call call_and_check
    inc %r13d
    cmp $NFUNCS, %r13d
    jb 6b
5:  inc %r12d
    cmp $ROUNDS1, %r12d
    jb 1b
    REPORT "1 512 functions generated, called, regenerated in place (8 rounds, 2 mappings)"
    ret

# random: R14 = next state of a linear congruential generator; returns it in EAX.
random:
    imul $1664525, %r14d, %r14d
    add $1013904223, %r14d
    mov %r14d, %eax
    ret

# generate: function R13 of round R12. Draws its operations into progs, then emits them.
generate:
    mov %r13d, %r15d            # R15 = &progs[R13]: NOPS (op, imm) pairs of 8 bytes
    imul $(NOPS * 8), %r15d, %r15d
    add $progs, %r15d
    xor %r8d, %r8d
1:  call random
    shr $29, %eax               # op = the top 3 bits
    mov %eax, (%r15, %r8, 8)
    call random
    mov %eax, 4(%r15, %r8, 8)   # imm
    inc %r8d
    cmp $NOPS, %r8d
    jb 1b
    mov %r13d, %eax             # RDI = where to write: the slot, through the chosen name
    shl $5, %eax
    add $jit_buf, %eax
    test $1, %r12d
    jz 2f
    call alias_of
2:  mov %eax, %edi
    movw $0xF889, (%rdi)        # 89 F8: MOV EAX, EDI
    add $2, %edi
    xor %r8d, %r8d
3:  mov (%r15, %r8, 8), %eax    # emit operation R8
    lea op_table(%rip), %rsi
    lea (%rsi, %rax, 8), %rsi
    movzbl (%rsi), %ecx
    movzbl 1(%rsi), %edx        # immediate size
    add $2, %rsi
    rep movsb                   # the fixed bytes
    mov 4(%r15, %r8, 8), %eax
    cmp $1, %edx
    jb 5f
    je 4f
    stosl                       # imm32
    jmp 5f
4:  stosb                       # imm8
5:  inc %r8d
    cmp $NOPS, %r8d
    jb 3b
    movb $0xC3, (%rdi)          # RET
    ret

# call_and_check: call function R13 (through the name round R12 says) with EDI = x, fold the
# result into EBX; interpret progs[R13] on the same x and fold that into EBP.
call_and_check:
    mov %r13d, %eax
    shl $5, %eax
    add $jit_buf, %eax
    test $2, %r12d
    jz 1f
    call alias_of
1:  imul $NFUNCS, %r12d, %edi   # x = round * 512 + function
    add %r13d, %edi
    call *%rax                  # into the generated code
    MIX %eax, %ebx
    mov %r13d, %r15d
    imul $(NOPS * 8), %r15d, %r15d
    add $progs, %r15d
    imul $NFUNCS, %r12d, %edi
    add %r13d, %edi
    mov %edi, %eax              # the interpreter: EAX = x, then each operation
    xor %r8d, %r8d
2:  mov (%r15, %r8, 8), %edx
    mov 4(%r15, %r8, 8), %ecx
    call interpret_op
    inc %r8d
    cmp $NOPS, %r8d
    jb 2b
    MIX %eax, %ebp
    ret

# interpret_op: EAX = value, EDX = op, ECX = imm, EDI = x; returns the new EAX.
interpret_op:
    lea interpret_jumps(%rip), %rsi
    mov (%rsi, %rdx, 4), %esi   # (an ELF32 file holds 32-bit addresses: fine below 4 GiB)
    jmp *%rsi
    .section .rodata
    .balign 4
interpret_jumps:
    .long 10f, 11f, 12f, 13f, 14f, 15f, 16f, 17f
    .text
10: add %ecx, %eax
    ret
11: sub %ecx, %eax
    ret
12: xor %ecx, %eax
    ret
13: imul %ecx, %eax
    ret
14: rol %cl, %eax               # like ROL EAX, imm8: the CPU masks the count to 5 bits
    ret
15: lea (%rax, %rdi), %eax
    add %ecx, %eax
    ret
16: not %eax
    ret
17: bswap %eax
    ret

# ---- case 2: one code, two addresses ------------------------------------------------------------
# In each buffer page, "LEA RAX, [RIP - 7]; RET" at offset 0x100 returns its own address. Run
# through both names, alternately, 4 times each: a translation of these bytes (one physical
# address) must not carry the RIP of the name it was first run under.
case_2:
    xor %ebx, %ebx
    xor %ebp, %ebp
    xor %r12d, %r12d            # R12 = buffer page
1:  mov %r12d, %edi
    shl $12, %edi
    add $(jit_buf + 0x100), %edi
    movl $0xF9058D48, (%rdi)    # 48 8D 05 F9 FF FF FF: LEA RAX, [RIP - 7]
    movl $0xC3FFFFFF, 4(%rdi)   # ... and C3: RET
    mov %edi, %r14d             # R14 = the identity address
    mov $4, %r13d
2:  mov %r14d, %eax             # through the identity name
    call *%rax
    MIX %eax, %ebx
    MIX %r14d, %ebp             # it must return the address it was called at
    mov %r14d, %eax             # through the alias
    call alias_of
    mov %eax, %r15d
    call *%rax
    MIX %eax, %ebx
    MIX %r15d, %ebp
    dec %r13d
    jnz 2b
    inc %r12d
    cmp $BUF_PAGES, %r12d
    jb 1b
    REPORT "2 the same bytes at two virtual addresses, RIP-relative LEA (4 pages x 8 calls)"
    ret

# ---- case 3: one virtual page, two physical pages ------------------------------------------
# Pass i (0..31): map REMAP_VA to remap_a (i even) or remap_b (i odd); call it — it still
# holds what pass i - 2 wrote there; write "MOV EAX, 0xC0DE0000 + i; RET" through REMAP_VA;
# call the page through its identity address, then through REMAP_VA again.
.set PASSES3, 32
.set MARK3,   0xC0DE0000

case_3:
    mov $remap_a, %edi          # pass -2 and -1's code
    mov $(MARK3 - 2), %eax
    call emit_mov_ret
    mov $remap_b, %edi
    mov $(MARK3 - 1), %eax
    call emit_mov_ret
    xor %ebx, %ebx
    xor %ebp, %ebp
    xor %r12d, %r12d
1:  mov $remap_a, %edi
    test $1, %r12d
    jz 2f
    mov $remap_b, %edi
2:  mov %edi, %r15d             # R15 = the physical (and identity) page
    mov $KCALL_REMAP, %eax
    ud2                         # kernel call: REMAP_VA -> page RDI, INVLPG
    mov $REMAP_VA, %eax
    call *%rax                  # what pass i - 2 left in this page
    MIX %eax, %ebx
    lea (MARK3 - 2)(%r12), %eax
    MIX %eax, %ebp
    mov $REMAP_VA, %edi         # rewrite the code through the remapped name
    lea MARK3(%r12), %eax
    call emit_mov_ret
    mov %r15d, %eax
    call *%rax                  # through the identity name
    MIX %eax, %ebx
    mov $REMAP_VA, %eax
    call *%rax                  # and through REMAP_VA
    MIX %eax, %ebx
    lea MARK3(%r12), %eax
    MIX %eax, %ebp
    MIX %eax, %ebp
    inc %r12d
    cmp $PASSES3, %r12d
    jb 1b
    REPORT "3 a virtual page remapped between two physical pages of code (32 passes)"
    ret

# emit_mov_ret: write "MOV EAX, imm32; RET" (B8 imm32 C3) at RDI, EAX = imm32.
emit_mov_ret:
    movb $0xB8, (%rdi)
    mov %eax, 1(%rdi)
    movb $0xC3, 5(%rdi)
    ret

# ---- case 4: a chain of generated blocks -------------------------------------------------------
# 64 blocks of 16 bytes in buffer page 2: "ADD EAX, imm32; JMP next" (05 imm32 E9 rel32), the
# last ends in RET. Called with EAX = 0, the chain returns the sum of its immediates. Each
# round rewrites one block's immediate (through the alias in odd rounds) and runs the chain
# 10 times (through the alias in rounds 2, 3, 6, 7, ...). The reference keeps the sum.
.set CHAIN,   64
.set ROUNDS4, 32
.set CHAIN_BASE, jit_buf + 2 * 4096

case_4:
    xor %ebp, %ebp              # EBP = the reference sum; first the chain, imm = 3 * k + 1
    mov $CHAIN_BASE, %edi
    xor %ecx, %ecx
1:  lea 1(%rcx, %rcx, 2), %eax
    add %eax, %ebp
    movb $0x05, (%rdi)
    mov %eax, 1(%rdi)
    movb $0xE9, 5(%rdi)
    movl $6, 6(%rdi)            # rel32 from the end of the JMP (+10) to the next block (+16)
    add $16, %edi
    inc %ecx
    cmp $CHAIN, %ecx
    jb 1b
    movb $0xC3, -11(%rdi)       # the last block: RET instead of the JMP
    mov %ebp, %r15d             # R15 = the sum the chain must return
    xor %ebx, %ebx
    xor %ebp, %ebp
    xor %r12d, %r12d
2:  imul $7, %r12d, %eax        # block (7 * round) % 64 gets imm = round * GOLDEN
    and $(CHAIN - 1), %eax
    shl $4, %eax
    add $CHAIN_BASE, %eax
    test $1, %r12d
    jz 3f
    call alias_of
3:  sub 1(%rax), %r15d          # the reference sum: minus the old immediate, plus the new
    imul $GOLDEN, %r12d, %ecx
    mov %ecx, 1(%rax)
    add %ecx, %r15d
    mov $10, %r13d
4:  mov $CHAIN_BASE, %eax
    test $2, %r12d
    jz 5f
    call alias_of
5:  mov %rax, %rcx
    xor %eax, %eax
    call *%rcx
    MIX %eax, %ebx
    MIX %r15d, %ebp
    dec %r13d
    jnz 4b
    inc %r12d
    cmp $ROUNDS4, %r12d
    jb 2b
    REPORT "4 a chain of 64 generated blocks, one rewritten per round (32 rounds x 10 calls)"
    ret

# ---- case 5: an instruction across two pages, the second one remapped --------------------------
# "MOV EAX, imm32; RET" at REMAP_VA - 4: the opcode and three immediate bytes are the last
# bytes of alias page 3 (buffer page 0), the immediate's top byte and the RET the first bytes
# of REMAP_VA — remap_a or remap_b. The instruction's start (virtual and physical) never
# changes, yet its value does whenever the second page is switched.
.set PASSES5, 16

case_5:
    mov $(jit_buf + 0xFFC), %edi    # the first page's part, through the identity name
    movl $0x563412B8, (%rdi)        # B8 12 34 56: MOV EAX, 0x??563412
    movw $0xC3AA, remap_a(%rip)     # top byte 0xAA, RET
    movw $0xC3BB, remap_b(%rip)     # top byte 0xBB, RET
    xor %ebx, %ebx
    xor %ebp, %ebp
    xor %r12d, %r12d
1:  mov $remap_a, %edi
    mov $0xAA563412, %r15d
    test $1, %r12d
    jz 2f
    mov $remap_b, %edi
    mov $0xBB563412, %r15d
2:  mov $KCALL_REMAP, %eax
    ud2                             # kernel call: REMAP_VA -> page RDI, INVLPG
    mov $(REMAP_VA - 4), %eax
    call *%rax
    MIX %eax, %ebx
    MIX %r15d, %ebp
    inc %r12d
    cmp $PASSES5, %r12d
    jb 1b
    REPORT "5 an instruction across two pages, its second page remapped (16 passes)"
    ret

# ---- case 6: a page-table entry inside code ---------------------------------------------------
# pt_code is a page of code AND the page table for ALIAS + 2 MiB. Its entry 16 (bytes
# 128-135) is the immediate of ad_probe's MOVABS RAX, imm64, and maps AD_VA to remap_a. The
# entry starts with A = D = 0; a read through AD_VA makes the CPU set A (bit 5) in it, a
# write D (bit 6): stores by the page walker, into code. ad_probe returns what it sees.
.set AD_VA, ALIAS + 0x200000 + 16 * 4096

case_6:
    xor %ebx, %ebx
    call ad_probe
    MIX %eax, %ebx
    mov AD_VA, %eax             # a read through the entry: A set
    call ad_probe
    MIX %eax, %ebx
    movl $1, AD_VA              # a write: D set
    call ad_probe
    MIX %eax, %ebx
    mov $(remap_a + PTE_FLAGS), %eax
    xor %ebp, %ebp              # reference: the entry, then with A, then with A and D
    MIX %eax, %ebp
    or $0x20, %eax
    MIX %eax, %ebp
    or $0x40, %eax
    MIX %eax, %ebp
    REPORT "6 a page-table entry that is an instruction's immediate: A/D set by the page walk"
    ret

    .section .rodata
opt_pte_in_code: .asciz "pte-in-code"
    .text

    .balign 4096
pt_code:                        # entries 0-15: zero, not present
    .org pt_code + 16 * 8 - 2, 0
ad_probe:
    .byte 0x48, 0xB8            # MOVABS RAX, imm64 — the imm64 is entry 16:
    .long remap_a + PTE_FLAGS, 0
    ret                         # (C3 in entry 17 makes it "present"; nothing uses it)
    .balign 4096, 0             # entries 18-511: not present

    .bss
    .balign 4096
jit_buf:    .skip BUF_PAGES * 4096
remap_a:    .skip 4096
remap_b:    .skip 4096
pd_alias:   .skip 4096
pt_alias:   .skip 4096
progs:      .skip NFUNCS * NOPS * 8
failures:   .skip 4
cases:      .skip 4
