#!/usr/bin/env bash
# Builds llamux.ko: the Rust engine as a static library (nightly, -Zbuild-std, kernel code
# model), merged into one relocatable object shipped to Kbuild beside the C shim.
# usage: kernel/build.sh [KERNEL_BUILD_DIR] [--fault-inject | --clippy]   (default: /lib/modules/<newest>/build)
# --fault-inject: a debug build (target/kernel/build-fault/llamux.ko) whose module parameter
# `fault` makes the engine panic, for the VM test of panic containment; the same Rust object.
# --clippy: only lints the Rust crate (clippy -D warnings), with the flags and target it is built with.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
kdir=""
variant=build
kcflags=""
clippy=0
for arg in "$@"; do
  case "$arg" in
    --fault-inject) variant=build-fault; kcflags="-DLX_FAULT_INJECT" ;;
    --clippy) clippy=1 ;;
    *) kdir="$arg" ;;
  esac
done
if [ -z "$kdir" ] && [ $clippy = 0 ]; then
  kver="$(ls /lib/modules | sort -V | tail -n1)"
  kdir="/lib/modules/$kver/build"
fi
out="$root/target/kernel"
mkdir -p "$out"

rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
rustup component add rust-src --toolchain nightly >/dev/null
[ $clippy = 0 ] || rustup component add clippy rustfmt --toolchain nightly >/dev/null

# Kernel code: no PLT/GOT (the module loader rejects GOTPCREL), kernel code model, no red zone,
# retpolines and return thunks as the kernel is built with. The kernel keeps its stack only
# 8-byte aligned (-mpreferred-stack-boundary=3): -stackrealign makes every Rust function that
# spills vector registers align its own frame. -Zcf-protection=branch puts endbr64 at the start
# of every function that may be called indirectly, which a kernel built with
# CONFIG_X86_KERNEL_IBT=y requires (it faults on an indirect call elsewhere); on other kernels
# endbr64 is a no-op, so it is always on, and ibt.py checks it below. curve25519-dalek's serial
# backend: its AVX2 one (picked at run time) overflowed the 16 KiB kernel stack of insmod while
# verifying a model's signature under QEMU's emulated CPU.
export RUSTFLAGS="-C relocation-model=static -C code-model=kernel -C no-redzone=yes -Zplt=yes \
  -Zfunction-return=thunk-extern -Zretpoline-external-thunk -C target-cpu=x86-64 \
  -C llvm-args=-stackrealign -Zcf-protection=branch --cfg curve25519_dalek_backend=\"serial\""
export CARGO_TARGET_DIR="$out/rust-target"
if [ $clippy = 1 ]; then
  cd "$here/rust"
  exec cargo +nightly clippy --release -Zbuild-std=core,alloc --target x86_64-unknown-linux-gnu -- -D warnings
fi
(cd "$here/rust" && cargo +nightly build --release -Zbuild-std=core,alloc --target x86_64-unknown-linux-gnu)
lib="$out/rust-target/x86_64-unknown-linux-gnu/release/libllamux_kmod.a"

build="$out/$variant"
rm -rf "$build" && mkdir -p "$build/objs"
cp "$here/llamux_main.c" "$here/llamux_trust.c" "$here/llamux_trust.h" "$here/llamux_call.S" "$here/llamux.h" "$here/Kbuild" "$build/"
(cd "$build/objs" && ar x "$lib")
# All code in one .text starting at llamux_rust_text, so that sites.py can name every site.
printf 'SECTIONS { .text : { llamux_rust_text = .; *(.text .text.*) } }\n' > "$build/rust.lds"
ld -r -T "$build/rust.lds" -o "$build/llamux_rust.o_shipped" "$build"/objs/*.o
# The return-thunk and retpoline sites, which objtool lists for C code, for the module loader.
python3 "$here/sites.py" "$build/llamux_rust.o_shipped" > "$build/llamux_sites.S"
objcopy --remove-section=.llvmbc --remove-section=.llvmcmd "$build/llamux_rust.o_shipped"
# Every function the C shim or Rust itself may call through a pointer starts with endbr64.
python3 "$here/ibt.py" "$build/llamux_rust.o_shipped"
if grep -q '^CONFIG_X86_KERNEL_IBT=y' "$kdir/.config" 2>/dev/null; then
  echo "build.sh: $kdir has CONFIG_X86_KERNEL_IBT=y: the engine's object is built for it" >&2
fi
if readelf -r "$build/llamux_rust.o_shipped" | grep -q GOTPCREL; then
  echo "llamux_rust.o has GOT-relative relocations; the module loader would reject it" >&2
  exit 1
fi
# modpost wants a .cmd file for every object.
echo "cmd_$build/llamux_rust.o := ld -r" > "$build/.llamux_rust.o.cmd"
make -C "$kdir" M="$build" KCFLAGS="$kcflags" modules
echo "$build/llamux.ko"
