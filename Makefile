# nfs-swap: swap over NFS (and NBD) that survives memory pressure.
#   make run            build, serve, boot one diskless client swapping over
#                       NFS under the seed workload, and summarise
#   make test           the suite (tests/nfs-swap), TAP, on the patched kernel
#                       (VARIANT=stock: on the stock one)
#   make kernel         build both guest kernels (stock and patched)
#   make print-kernel [VARIANT=stock]   path of a bzImage
#   make bench [BENCH=--quick]   benchmarks (bench/run: local, NBD, NFS and
#                       the raw network limit); report in bench/results/
# Everything is built under out/; Debian packages are installed on demand.

VARIANT ?= patched
OUT := $(CURDIR)/out
INITRAMFS := $(OUT)/guest/initramfs.cpio.gz
GUEST_SRC := $(wildcard tests/nfs-swap/guest/*)
KERNEL_INPUTS := build/BASE build/guest.config build/kernel.sh \
	$(shell find patches mm fs net include drivers kernel lib block \
		Documentation -type f 2>/dev/null)

.PHONY: all deps kernel initramfs run test bench print-kernel clean

all: kernel initramfs

deps:
	@build/deps.sh kernel guest server qemu

kernel: $(OUT)/kernel/stock/bzImage $(OUT)/kernel/patched/bzImage

$(OUT)/kernel/%/bzImage: $(KERNEL_INPUTS) | deps
	build/kernel.sh $*

initramfs: $(INITRAMFS)

$(INITRAMFS): $(GUEST_SRC) | deps
	@mkdir -p $(dir $@)
	tests/nfs-swap/guest/mkinitramfs.sh $@

# run and test build only the kernel they boot ($(VARIANT)); compare and
# bench build the others they are asked for
run: $(OUT)/kernel/$(VARIANT)/bzImage initramfs
	VARIANT=$(VARIANT) NST_RUNS=$(OUT)/runs/run-$$(date +%Y%m%d-%H%M%S) \
		tests/nfs-swap/cases/031-seed-nfs4.2

test: $(OUT)/kernel/$(VARIANT)/bzImage initramfs
	tests/nfs-swap/run

bench: kernel initramfs
	@build/deps.sh bench
	bench/run $(BENCH)

print-kernel:
	@echo $(OUT)/kernel/$(VARIANT)/bzImage

clean:
	rm -rf $(OUT)
