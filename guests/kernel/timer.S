# timer.S — the 8259 PIC and the 8254 PIT: a 100 Hz timer interrupt that runs through every
# workload. Teaches: how an interrupt controller is initialised and acknowledged, and why a
# benchmark sees timer interrupts at all (on KVM each one is a VM exit plus an injection).

    .code64
    .text
# timer_start: remap the PICs to vectors 0x20-0x2F (the power-on 0x08-0x0F collide with CPU
# exceptions), unmask IRQ 0 only, and program PIT counter 0 as a 100 Hz rate generator.
timer_start:
    OUTB PIC1_CMD, 0x11             # ICW1: start initialisation, ICW4 follows
    OUTB PIC2_CMD, 0x11
    OUTB PIC1_DATA, 0x20            # ICW2: master IRQ 0-7 -> vectors 0x20-0x27
    OUTB PIC2_DATA, 0x28            #       slave IRQ 8-15 -> vectors 0x28-0x2F
    OUTB PIC1_DATA, 0x04            # ICW3: the slave hangs on master line 2
    OUTB PIC2_DATA, 0x02
    OUTB PIC1_DATA, 0x01            # ICW4: 8086 mode
    OUTB PIC2_DATA, 0x01
    OUTB PIC1_DATA, 0xFE            # mask everything but IRQ 0
    OUTB PIC2_DATA, 0xFF
    OUTB PIT_MODE, 0x34             # counter 0, low then high byte, mode 2, binary
    OUTB PIT_CH0, PIT_DIVISOR & 0xFF
    OUTB PIT_CH0, PIT_DIVISOR >> 8
    ret

# IRQ 0: count the tick and acknowledge it. It may interrupt ring 3 or ring 0 anywhere, so
# it saves what it touches.
timer_interrupt:
    push %rax
    push %rdx
    incq ticks(%rip)
    mov $PIC_EOI, %al
    mov $PIC1_CMD, %dx
    out %al, %dx
    pop %rdx
    pop %rax
    iretq

# A spurious IRQ 7 or 15 (a request that vanished before the CPU acknowledged it) gets no EOI.
spurious_interrupt:
    iretq
