package vmcore

// x86_64 pr_reg is struct user_regs_struct.
var archX86_64 = arch{
	nregs: 27, pcIndex: 16, spIndex: 19, pageSize: 4096,
	regNames: []string{"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10",
		"r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs",
		"eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs"},
}
