# dirty.S — the `dirty:N` workload: a guest that writes memory at a known rate, for live
# migration (`vmscope run … --migrate-to`). Teaches: pre-copy converges when the link sends
# pages faster than the guest dirties them; this guest dirties DIRTY_PER_TICK pages per timer
# tick (100 Hz), walking through a DIRTY_PAGES-page area, and prints a counter every tick.
#
# Tick i (i = 0 … N−1) waits for the timer, then stores the qword i << 16 | j into slot i mod
# 512 of page (i × DIRTY_PER_TICK + j) mod DIRTY_PAGES, for j = 0 … DIRTY_PER_TICK − 1, and
# prints "dirty: tick i". The checksum folds every qword of the area (h = h × 31 + q), so a
# page a migration failed to carry changes the RESULT line; the output shows a lost or a
# repeated tick.

.set DIRTY_AREA,     0x3400000      # 52-56 MiB: above the drivers' areas, below 64 MiB
.set DIRTY_PAGES,    1024           # 4 MiB
.set DIRTY_PER_TICK, 16             # pages per tick: 1,600 pages (6.25 MiB) per second

    .code64
    .text
# ANCHOR: dirty
# k_dirty: RDI = N ticks; RAX = the checksum of the area afterwards.
k_dirty:
    push %rbx
    push %r12
    push %r13
    mov %rdi, %r12                  # R12 = N
    xor %ebx, %ebx                  # RBX = i
    mov $DIRTY_AREA, %edi           # the area starts zeroed: a rerun must not see its last run
    mov $DIRTY_PAGES * PAGE_SIZE / 8, %ecx
    xor %eax, %eax
    rep stosq
1:  cmp %r12, %rbx
    jae 5f
    mov ticks(%rip), %r13           # wait for the next tick
2:  sti
    hlt
    cmp ticks(%rip), %r13
    je 2b
    xor %ecx, %ecx                  # RCX = j
3:  mov %rbx, %rax                  # page (i × DIRTY_PER_TICK + j) mod DIRTY_PAGES ...
    imul $DIRTY_PER_TICK, %rax
    add %rcx, %rax
    and $DIRTY_PAGES - 1, %eax
    shl $12, %rax
    mov %rbx, %rdx                  # ... slot i mod 512
    and $511, %edx
    lea DIRTY_AREA(%rax, %rdx, 8), %rdi
    mov %rbx, %rax                  # ← i << 16 | j
    shl $16, %rax
    or %rcx, %rax
    mov %rax, (%rdi)
    inc %ecx
    cmp $DIRTY_PER_TICK, %ecx
    jb 3b
    PRINT "dirty: tick "
    mov %rbx, %rax
    call print_u64
    PRINT "\n"
    inc %rbx
    jmp 1b
5:  xor %eax, %eax                  # the checksum: h = h × 31 + q over the whole area
    mov $DIRTY_AREA, %esi
    mov $DIRTY_PAGES * PAGE_SIZE / 8, %ecx
6:  imul $31, %rax
    add (%rsi), %rax
    add $8, %rsi
    dec %ecx
    jnz 6b
    pop %r13
    pop %r12
    pop %rbx
    ret
# ANCHOR_END: dirty
