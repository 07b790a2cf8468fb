# memory.S — physical frames, address spaces and demand-zero page faults.
# Teaches: a kernel's memory is a pool of 4 KiB frames; an address space is four page tables
# built from that pool; a page can stay unmapped until first touched (the fault handler maps
# a zeroed frame and the instruction runs again), and unmapping needs INVLPG.
#
# Live page tables change only through the pv_ops (pv.S): pte_set, tlb_flush_page, then
# mmu_commit. Natively that is a store and an INVLPG; paravirtualized, the changes are queued
# and the commit hands them to the VMM at once. Tables of a space that is not in use yet
# (space_create) are plain memory to everyone and are written directly.
#
# An address space (one per user task, or per ring-0 test):
#   PML4[0] -> PDPT;  PDPT[0] -> PD;  PDPT[3] -> device_pd (shared: the null-device MMIO page)
#   PD[0]  = 0-2 MiB, the kernel: a supervisor 2 MiB page, the same in every space
#   PD[1]  -> PT: 2-4 MiB in 4 KiB pages, the user's: code (shared, read-only) + demand-zero
#   PD[2..31] = 4-64 MiB: the frame pool, supervisor only, so the kernel can reach any frame
# The upper levels carry U/S = 1 so that the PT entries alone decide what ring 3 may touch.

    .code64
    .text
# frames_init: the pool is empty-handed at first: frames come from a bump pointer, and frames
# given back go onto a free list threaded through the frames themselves.
frames_init:
    movq $FRAMES_START, next_frame(%rip)
    movq $0, free_frames(%rip)
    ret

# frame_alloc: RAX = the physical address of a zeroed frame. Clobbers RCX, RDI.
frame_alloc:
    mov free_frames(%rip), %rax
    test %rax, %rax
    jz 1f
    mov (%rax), %rcx                # a free frame's first word links to the next one
    mov %rcx, free_frames(%rip)
    jmp 2f
1:  mov next_frame(%rip), %rax
    cmp $FRAMES_END, %rax
    jae out_of_frames
    lea PAGE_SIZE(%rax), %rcx
    mov %rcx, next_frame(%rip)
2:  push %rax                       # zero it: 512 quadwords of 0
    mov %rax, %rdi
    mov $PAGE_SIZE / 8, %ecx
    xor %eax, %eax
    rep stosq
    pop %rax
    ret

out_of_frames:
    PRINT "kernel: out of page frames\n"
    EXIT EXIT_NO_MEMORY

# frame_free: RDI = a frame no longer mapped anywhere. Clobbers RAX.
frame_free:
    mov free_frames(%rip), %rax
    mov %rax, (%rdi)
    mov %rdi, free_frames(%rip)
    ret

# space_create: RAX = a new address space's PML4 (the value for CR3). Clobbers RCX, RDX,
# RSI, RDI, R8-R10.
space_create:
    call frame_alloc
    mov %rax, %r8                   # R8 = PML4
    call frame_alloc
    mov %rax, %r9                   # R9 = PDPT
    call frame_alloc
    mov %rax, %r10                  # R10 = PD
    call frame_alloc
    mov %rax, %rsi                  # RSI = PT
    lea PG_P + PG_RW + PG_US(%r9), %rax
    mov %rax, (%r8)
    lea PG_P + PG_RW + PG_US(%r10), %rax
    mov %rax, (%r9)
    mov $device_pd + PG_P + PG_RW, %eax
    mov %rax, 3 * 8(%r9)
    movq $PG_P + PG_RW + PG_PS, (%r10)          # PD[0]: the kernel's 0-2 MiB
    lea PG_P + PG_RW + PG_US(%rsi), %rax
    mov %rax, 8(%r10)                           # PD[1]: the user's page table
    mov $2, %ecx                                # PD[2..]: the frame pool, kernel only
1:  mov %rcx, %rax
    shl $21, %rax
    or $PG_P + PG_RW + PG_PS, %rax
    mov %rax, (%r10, %rcx, 8)
    inc %ecx
    cmp $KERNEL_MAP_END_2M, %ecx
    jb 1b
    # The user programs' code: present, user, read-only, executable; the same frames in
    # every space, like a shared library.
    mov $USER_BASE, %eax
2:  cmp $user_text_end, %eax
    jae 3f
    mov %rax, %rdx
    or $PG_P + PG_US, %rdx
    mov %rax, %rcx
    sub $USER_BASE, %rcx
    shr $12, %rcx
    mov %rdx, (%rsi, %rcx, 8)
    add $PAGE_SIZE, %eax
    jmp 2b
3:  mov %r8, %rax
    ret

# space_pte: RDI = a PML4, RSI = an address in 2-4 MiB; RAX = the address of its PT entry,
# found by walking the tables from the top as the CPU does. Clobbers RCX.
space_pte:
    mov $ADDR_MASK, %rcx
    mov %rdi, %rax
    and %rcx, %rax                  # PML4
    mov (%rax), %rax                # PML4[0]
    and %rcx, %rax                  # PDPT
    mov (%rax), %rax                # PDPT[0]
    and %rcx, %rax                  # PD
    mov 8(%rax), %rax               # PD[1]
    and %rcx, %rax                  # PT
    mov %rsi, %rcx
    sub $USER_BASE, %rcx
    shr $12, %rcx
    lea (%rax, %rcx, 8), %rax
    ret

# user_pte: RDI = an address in 2-4 MiB; RAX = its PT entry's address in the current space.
# Clobbers RCX.
user_pte:
    push %rsi
    push %rdi
    mov %rdi, %rsi
    mov %cr3, %rdi
    call space_pte
    pop %rdi
    pop %rsi
    ret

# demand_zero: RDI = the faulting address (CR2) of a not-present fault. If it lies in the
# demand-zero region of a user space, map a fresh zeroed frame there and return RAX = 1, so
# the faulting instruction runs again and succeeds; else RAX = 0. No INVLPG is needed: a
# not-present entry is never cached in the TLB.
demand_zero:
    mov %cr3, %rax
    mov $boot_pml4, %ecx
    cmp %rcx, %rax                  # the boot space has no demand-zero region
    je 1f
    cmp $DZ_START, %rdi
    jb 1f
    cmp $DZ_END, %rdi
    jae 1f
    push %rdi
    call frame_alloc                # RAX = zeroed frame
    pop %rdi
    mov %rax, %rdx
    call user_pte
    or $PG_P + PG_RW + PG_US, %rdx
    bts $63, %rdx                   # NX: data, never code
    mov %rax, %rdi
    mov %rdx, %rsi
    call pte_set
    call mmu_commit                 # in place before the instruction runs again
    incq demand_zero_faults(%rip)
    mov $1, %eax
    ret
1:  xor %eax, %eax
    ret

# release_pages (SYS_RELEASE): RDI = first address, RSI = page count. Unmaps the demand-zero
# pages in that range, frees their frames and flushes each from the TLB. RAX = pages freed.
# The range is checked against the demand-zero region first: never trust a user's pointer.
# This is where batching pays: a whole window (pagefault's 128 pages) is 256 requests and one
# commit — one hypercall instead of 128 trapped stores. The frames go on the free list before
# the commit, while the user's entries may still point at them; that is safe only because
# nothing can allocate a frame or run user code before the commit below.
# Clobbers RCX, RDX, RSI, RDI, R8.
release_pages:
    xor %r8d, %r8d
    and $~(PAGE_SIZE - 1), %rdi
    cmp $DZ_START, %rdi
    jb 9f
    cmp $(DZ_END - DZ_START) >> 12, %rsi  # at most the whole region
    ja 9f
    mov %rsi, %rdx
    shl $12, %rdx
    add %rdi, %rdx                  # RDX = end of the range
    cmp $DZ_END, %rdx
    ja 9f
1:  cmp %rdx, %rdi
    jae 8f
    call user_pte                   # RAX = the entry (RDI stays)
    mov (%rax), %rcx
    test $PG_P, %cl
    jz 2f
    push %rdi
    mov %rax, %rdi
    xor %esi, %esi
    call pte_set                    # unmap, then make the CPU forget the old translation
    mov (%rsp), %rdi
    call tlb_flush_page
    mov $ADDR_MASK, %rax
    and %rax, %rcx
    mov %rcx, %rdi
    call frame_free
    inc %r8
    pop %rdi
2:  add $PAGE_SIZE, %rdi
    jmp 1b
8:  call mmu_commit
9:  mov %r8, %rax
    ret

# space_destroy: RDI = a PML4 that is not the current CR3. Frees its demand-zero frames and its
# four tables. Clobbers RAX, RCX, RDX, RSI, RDI, R8.
space_destroy:
    mov %rdi, %r8                   # R8 = PML4
    mov $ADDR_MASK, %rdx
    mov (%r8), %rsi
    and %rdx, %rsi                  # RSI = PDPT
    mov (%rsi), %rcx
    and %rdx, %rcx                  # RCX = PD
    mov 8(%rcx), %rax
    and %rdx, %rax                  # RAX = PT
    push %rsi
    push %rcx
    push %rax
    mov $(DZ_START - USER_BASE) >> 12, %esi
1:  mov (%rsp), %rax
    mov (%rax, %rsi, 8), %rdi
    test $PG_P, %dil
    jz 2f
    and %rdx, %rdi
    call frame_free
2:  inc %esi
    cmp $(DZ_END - USER_BASE) >> 12, %esi
    jb 1b
    pop %rdi                        # PT
    call frame_free
    pop %rdi                        # PD
    call frame_free
    pop %rdi                        # PDPT
    call frame_free
    mov %r8, %rdi                   # PML4
    call frame_free
    ret

# map_device: RDI = a physical address, RSI = a length in bytes. Maps the 2 MiB pages that
# cover the range one to one, uncached and supervisor-only, in device_pd (3-4 GiB), which
# every address space shares — where nothing is mapped yet. Device registers must not be
# cached (PCD + PWT): a read has to reach the device every time. RAX = 0, or -1 when the
# range leaves 3-4 GiB, the one window this kernel keeps for devices (the local APIC, the
# IOAPIC, virtio-mmio windows and PCI BARs as QEMU's firmware and vmscope place them).
# Clobbers RCX, RDX, RSI, RDI, R8.
map_device:
    test %rsi, %rsi
    jz 8f
    lea -1(%rdi, %rsi), %r8         # R8 = the last byte
    mov $0xC0000000, %eax
    cmp %rax, %rdi
    jb 9f
    mov $0xFFFFFFFF, %eax
    cmp %rax, %r8
    ja 9f
    and $~0x1FFFFF, %rdi            # the first 2 MiB page
1:  cmp %r8, %rdi
    ja 7f
    mov %rdi, %rcx
    shr $21, %ecx
    and $511, %ecx
    mov $device_pd, %edx
    lea (%rdx, %rcx, 8), %rdx       # the directory entry for this 2 MiB
    testb $PG_P, (%rdx)
    jnz 2f
    push %rdi
    mov %rdi, %rsi
    or $PG_P + PG_RW + PG_PS + PG_PCD + PG_PWT, %rsi
    mov %rdx, %rdi
    call pte_set                    # a live table: through the pv_ops (pv.S)
    pop %rdi
2:  add $0x200000, %rdi
    jmp 1b
7:  call mmu_commit                 # nothing was mapped there, so nothing to flush
8:  xor %eax, %eax
    ret
9:  mov $-1, %rax
    ret
