// {{BANNER}}
//! Bare-metal firmware: runs the model crate `{{NAME}}` on the baked samples and prints every
//! output value as the hex bits of its float32 over semihosting (the same format as the C
//! firmware's main.c), then exits. Vector table, reset handler and semihosting are here, so
//! the image needs no crate but the model's; link.ld is the C image's linker script.
#![no_std]
#![no_main]

use core::fmt::Write as _;
use {{NAME}} as model;

unsafe extern "C" {
    static _estack: u32;
    static _sidata: u32;
    static mut _sdata: u32;
    static mut _edata: u32;
    static mut _sbss: u32;
    static mut _ebss: u32;
}

/// The Cortex-M vector table: initial stack pointer, reset, then NMI .. SysTick.
#[repr(C)]
pub struct Vectors {
    stack: *const u32,
    handlers: [unsafe extern "C" fn(); 15],
}

// SAFETY: read-only table of addresses, read by the hardware.
unsafe impl Sync for Vectors {}

#[unsafe(link_section = ".vectors")]
#[unsafe(no_mangle)]
#[used]
pub static VECTORS: Vectors = Vectors { stack: &raw const _estack, handlers: [{{HANDLERS}}] };

const ENABLE_FPU: bool = {{ENABLE_FPU}};

/// Reset: FPU on (before any float instruction), .data copied from flash, .bss zeroed, run.
///
/// # Safety
/// Entered by the hardware only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Reset_Handler() {
    // SAFETY: single-threaded start-up; the symbols come from link.ld.
    unsafe {
        if ENABLE_FPU {
            let cpacr = 0xE000_ED88 as *mut u32;
            cpacr.write_volatile(cpacr.read_volatile() | (0xF << 20));
            core::arch::asm!("dsb", "isb");
        }
        let mut src = &raw const _sidata;
        let mut dst = &raw mut _sdata;
        while dst < &raw mut _edata {
            dst.write_volatile(src.read());
            dst = dst.add(1);
            src = src.add(1);
        }
        let mut dst = &raw mut _sbss;
        while dst < &raw mut _ebss {
            dst.write_volatile(0);
            dst = dst.add(1);
        }
    }
    let code = run_samples();
    exit(code == 0);
}

/// Any fault: stop with an error.
///
/// # Safety
/// Entered by the hardware only.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn Fault_Handler() {
    exit(false);
}

fn semihost(op: usize, arg: usize) -> usize {
    let ret;
    // SAFETY: the semihosting call reads only the memory `arg` points to.
    unsafe { core::arch::asm!("bkpt #0xab", inout("r0") op => ret, in("r1") arg, options(nostack)) };
    ret
}

/// SYS_EXIT with ADP_Stopped_ApplicationExit (QEMU exits 0) or an error reason (exits 1).
fn exit(ok: bool) -> ! {
    semihost(0x18, if ok { 0x20026 } else { 0x20024 });
    loop {}
}

/// Semihosting stdout: the `:tt` file opened for writing (as newlib's stdout is), so the text
/// reaches the host's standard output.
struct Console(usize);

impl Console {
    fn open() -> Console {
        let name = b":tt\0";
        let args = [name.as_ptr() as usize, 4, 3]; // SYS_OPEN(":tt", "w", strlen)
        Console(semihost(0x01, args.as_ptr() as usize))
    }
}

impl core::fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let args = [self.0, s.as_ptr() as usize, s.len()]; // SYS_WRITE(handle, buf, len)
        if semihost(0x05, args.as_ptr() as usize) == 0 { Ok(()) } else { Err(core::fmt::Error) }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = Console::open().write_str("panic\n");
    exit(false)
}

const SAMPLES: usize = {{SAMPLES}};
{{INPUT_DATA}}
static mut ARENA: model::Arena = model::Arena::new();

fn print_bits(out: &mut Console, label: &str, v: &[f32]) {
    let _ = out.write_str(label);
    for x in v {
        let _ = write!(out, " {:08x}", x.to_bits());
    }
    let _ = out.write_str("\n");
}

#[inline(never)]
fn run_samples() -> i32 {
    // SAFETY: the only reference to ARENA, taken once; no interrupts use it.
    let arena = unsafe { &mut *(&raw mut ARENA) };
    let mut out = Console::open();
    let _ = writeln!(out, "modelless firmware {{NAME}}: {SAMPLES} samples, arena {} bytes", model::ARENA_BYTES);
{{BUFFERS}}
    for s in 0..SAMPLES {
{{COPY_INPUTS}}
        model::run({{ARGS}}, arena);
        let _ = writeln!(out, "sample {s}");
{{PRINT_OUTPUTS}}
    }
    let _ = out.write_str("done\n");
    0
}
