#!/usr/bin/env bash
# run-vm.sh — boots the ironclone live system under QEMU (TCG) and returns the unattended job's result.
#
# Why one tool: every end-to-end test (and `make demo`) needs the same things — a firmware
# (SeaBIOS or OVMF with a fresh vars store), the ISO as a CD or a USB stick or kernel+initramfs
# direct (fastest), named disks on the bus a rescuer meets (virtio, SATA, NVMe, USB), a serial
# log, a timeout, and the `IRONCLONE-RESULT` line turned into an exit code.
#
# usage: qemu/run-vm.sh [options]
#   --iso PATH            boot this ISO (default: kernel+initramfs direct)
#   --boot cd|usb         how the ISO is attached (default cd)
#   --kernel PATH         default build/kernel/vmlinuz
#   --initrd PATH         default build/initramfs.img
#   --append ARGS         extra kernel arguments (direct boot only; e.g. ironclone.run=--version)
#   --firmware bios|uefi  SeaBIOS (default) or OVMF
#   --vars PATH           OVMF variable store used in place and left as the firmware wrote it
#                         (NVRAM tests chain boots through it); default a fresh temporary copy
#   --disk PATH,if=virtio|sata|nvme|usb[,serial=X][,readonly][,boot][,blkdebug=CFG]   (repeatable)
#                         blkdebug=CFG: reads go through QEMU's blkdebug driver with the rules
#                         in CFG (e.g. [inject-error] event="read_aio" errno="5" sector="N"):
#                         a failing disk, for the rescue tests
#   --nic MODEL           a NIC on QEMU's user network (10.0.2.0/24, DHCP, no inbound):
#                         virtio-net-pci, e1000, e1000e, rtl8139... (default virtio-net-pci
#                         when --smb is given)
#   --smb DIR             QEMU's built-in SMB server (needs smbd on the host) exports DIR as
#                         //10.0.2.4/qemu to the guest, read-write, guest login
#   --smbd-conf CONF      a second SMB server at 10.0.2.5: the host's smbd with this config
#                         (shares with logins, for credential tests); its log lands next to CONF
#   --netboot DIR=FILE    boot from the network (PXE on SeaBIOS through the NIC's iPXE ROM,
#                         OVMF's own stack): QEMU's user network serves DIR by TFTP with FILE
#                         as the DHCP boot file (image/build-netboot.sh makes DIR); no kernel,
#                         no ISO; the NIC comes first in the boot order
#   --tap IF              the NIC on tap device IF instead of QEMU's user network (a network the
#                         test built, e.g. in a namespace: run this script inside it)
#   --boot-nic            the NIC first in the boot order (PXE from a server on the --tap network)
#   --mac MAC             the NIC's MAC address (QEMU gives every machine the same one: several
#                         machines on one --tap network need their own)
#   --timeout SECONDS     default 240
#   --log PATH            serial log (default build/qemu-logs/vm-<time>-<pid>.log)
#   --serial2 PATH        a second serial port (the guest's ttyS1) written to PATH: what a
#                         program draws there (deploy-client --screen /dev/ttyS1)
#   --serial-sock PATH    the serial console is also a Unix socket at PATH (QEMU the server, not
#                         waiting for a client): a test types into the guest's ttyS0 and reads
#                         what it draws there (tests/qemu/tui-drive.py); the log gets it all
#   --expect STRING       succeed as soon as STRING appears on the serial console, then stop the
#                         VM (for interactive boots that never print a result)
#   --mem MIB             default 1024
#   --pidfile PATH        QEMU writes its process id here (a test that pulls the plug: kill -9)
# exit: 0 when the job printed `IRONCLONE-RESULT: ok` (or --expect matched); the job's rc for
#       `fail rc=N` (1 if N is 0); 124 on timeout; 125 when the VM stopped without a result.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

ISO="" BOOT=cd KERNEL="$ROOT/build/kernel/vmlinuz" INITRD="$ROOT/build/initramfs.img" APPEND=""
FIRMWARE=bios TIMEOUT=240 LOG="" EXPECT="" MEM=1024 VARS="" NIC="" SMB="" SMBD_CONF="" NETBOOT="" TAP="" BOOT_NIC=0 PIDFILE="" MAC="" SERIAL2="" SERIAL_SOCK=""
DISKS=()
while (($#)); do
	case "$1" in
	--iso) ISO="$2"; shift 2 ;;
	--boot) BOOT="$2"; shift 2 ;;
	--kernel) KERNEL="$2"; shift 2 ;;
	--initrd) INITRD="$2"; shift 2 ;;
	--append) APPEND="$APPEND $2"; shift 2 ;;
	--firmware) FIRMWARE="$2"; shift 2 ;;
	--vars) VARS="$2"; shift 2 ;;
	--disk) DISKS+=("$2"); shift 2 ;;
	--nic) NIC="$2"; shift 2 ;;
	--smb) SMB="$2"; shift 2 ;;
	--netboot) NETBOOT="$2"; shift 2 ;;
	--tap) TAP="$2"; shift 2 ;;
	--boot-nic) BOOT_NIC=1; shift ;;
	--smbd-conf) SMBD_CONF="$2"; shift 2 ;;
	--timeout) TIMEOUT="$2"; shift 2 ;;
	--log) LOG="$2"; shift 2 ;;
	--expect) EXPECT="$2"; shift 2 ;;
	--mem) MEM="$2"; shift 2 ;;
	--pidfile) PIDFILE="$2"; shift 2 ;;
	--mac) MAC="$2"; shift 2 ;;
	--serial2) SERIAL2="$2"; shift 2 ;;
	--serial-sock) SERIAL_SOCK="$2"; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-vm: unknown option $1" >&2; exit 2 ;;
	esac
done

if [[ -z "$LOG" ]]; then
	mkdir -p "$ROOT/build/qemu-logs"
	LOG="$ROOT/build/qemu-logs/vm-$(date +%Y%m%d-%H%M%S)-$$.log"
fi
mkdir -p "$(dirname "$LOG")"
: >"$LOG"
WORK="$(mktemp -d)"
QPID=""
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
	if [[ -n "$QPID" ]] && kill -0 "$QPID" 2>/dev/null; then
		kill "$QPID" 2>/dev/null || true
		wait "$QPID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck disable=SC2054 # commas inside QEMU option values, not array separators
args=(-machine q35 -accel tcg -cpu max -smp 1 -m "$MEM" -nodefaults -display none -no-reboot
	-vga std -device ahci,id=ahci0 -device qemu-xhci,id=xhci)

case "$FIRMWARE" in
bios) ;;
uefi)
	code=/usr/share/OVMF/OVMF_CODE_4M.fd vars=/usr/share/OVMF/OVMF_VARS_4M.fd
	[[ -f "$code" && -f "$vars" ]] || { echo "run-vm: OVMF not installed ($code)" >&2; exit 2; }
	if [[ -z "$VARS" ]]; then
		cp "$vars" "$WORK/vars.fd"
		VARS="$WORK/vars.fd"
	fi
	[[ -f "$VARS" ]] || { echo "run-vm: VARS store $VARS does not exist" >&2; exit 2; }
	args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
		-drive "if=pflash,format=raw,unit=1,file=$VARS")
	;;
*) echo "run-vm: --firmware must be bios or uefi" >&2; exit 2 ;;
esac
[[ -z "$VARS" || "$FIRMWARE" == uefi ]] || { echo "run-vm: --vars needs --firmware uefi" >&2; exit 2; }

sata_port=0 n=0
add_disk() { # path iface serial readonly bootindex [blkdebug-config]
	local path="$1" iface="$2" serial="$3" ro="$4" bootidx="$5" bdcfg="${6:-}" id="d$n" dev
	n=$((n + 1))
	[[ -e "$path" ]] || { echo "run-vm: disk $path does not exist" >&2; exit 2; }
	local drive="file=$path,format=raw,if=none,id=$id,cache=unsafe"
	if [[ -n "$bdcfg" ]]; then
		[[ -f "$bdcfg" ]] || { echo "run-vm: blkdebug config $bdcfg does not exist" >&2; exit 2; }
		# raw on top of blkdebug on top of the file: raw's reads raise the read_aio event
		# the rules match on, and the default rerror=report hands EIO to the guest.
		drive="format=raw,if=none,id=$id,cache=unsafe,file.driver=blkdebug,file.config=$bdcfg"
		drive+=",file.image.driver=file,file.image.filename=$path"
	fi
	[[ "$ro" == 1 ]] && drive+=",readonly=on"
	args+=(-drive "$drive")
	case "$iface" in
	virtio) dev="virtio-blk-pci,drive=$id" ;;
	sata)
		((sata_port < 6)) || { echo "run-vm: at most 6 SATA disks" >&2; exit 2; }
		dev="ide-hd,drive=$id,bus=ahci0.$sata_port"
		sata_port=$((sata_port + 1))
		;;
	cd)
		((sata_port < 6)) || { echo "run-vm: at most 6 SATA devices" >&2; exit 2; }
		dev="ide-cd,drive=$id,bus=ahci0.$sata_port"
		sata_port=$((sata_port + 1))
		;;
	nvme) dev="nvme,drive=$id,serial=${serial:-ICNVME$n}"; serial="" ;;
	usb) dev="usb-storage,bus=xhci.0,drive=$id,removable=on" ;;
	*) echo "run-vm: unknown interface '$iface' (virtio|sata|nvme|usb)" >&2; exit 2 ;;
	esac
	[[ -n "$serial" ]] && dev+=",serial=$serial"
	[[ -n "$bootidx" ]] && dev+=",bootindex=$bootidx"
	args+=(-device "$dev")
}

if [[ -n "$NETBOOT" ]]; then
	[[ -z "$ISO" ]] || { echo "run-vm: --netboot and --iso exclude each other" >&2; exit 2; }
	nb_dir="${NETBOOT%%=*}" nb_file="${NETBOOT#*=}"
	[[ "$NETBOOT" == *=* && -f "$nb_dir/$nb_file" ]] || { echo "run-vm: --netboot DIR=FILE: no $nb_dir/$nb_file" >&2; exit 2; }
	[[ "$nb_dir" != *,* ]] || { echo "run-vm: --netboot directory must not contain a comma" >&2; exit 2; }
	NIC="${NIC:-virtio-net-pci}"
	BOOT_NIC=1
elif [[ $BOOT_NIC == 1 ]]; then
	[[ -n "$TAP" && -z "$ISO" ]] || { echo "run-vm: --boot-nic needs --tap and no --iso" >&2; exit 2; }
elif [[ -n "$ISO" ]]; then
	[[ -f "$ISO" ]] || { echo "run-vm: ISO $ISO not found (make iso)" >&2; exit 2; }
	case "$BOOT" in
	cd) add_disk "$ISO" cd "" 1 0 ;;
	usb) add_disk "$ISO" usb "" 1 0 ;;
	*) echo "run-vm: --boot must be cd or usb" >&2; exit 2 ;;
	esac
	[[ -z "$APPEND" ]] || echo "run-vm: note: --append is ignored for ISO boots (use the GRUB job disk)" >&2
else
	[[ -f "$KERNEL" && -f "$INITRD" ]] || { echo "run-vm: $KERNEL or $INITRD missing (make iso)" >&2; exit 2; }
	args+=(-kernel "$KERNEL" -initrd "$INITRD"
		-append "console=tty1 console=ttyS0,115200 panic=-1 loglevel=4$APPEND")
fi

# OVMF only connects the devices listed in QEMU's boot order, so every disk gets a (later)
# boot index; otherwise GRUB under UEFI cannot see a job disk.
next_boot=1
for spec in "${DISKS[@]}"; do
	IFS=, read -r -a parts <<<"$spec"
	path="${parts[0]}" iface=virtio serial="" ro=0 boot="" bdcfg=""
	for p in "${parts[@]:1}"; do
		case "$p" in
		if=*) iface="${p#if=}" ;;
		serial=*) serial="${p#serial=}" ;;
		readonly) ro=1 ;;
		boot) boot=0 ;;
		blkdebug=*) bdcfg="${p#blkdebug=}" ;;
		*) echo "run-vm: unknown disk option '$p' in $spec" >&2; exit 2 ;;
		esac
	done
	if [[ -z "$boot" ]]; then
		boot=$next_boot
		next_boot=$((next_boot + 1))
	fi
	add_disk "$path" "$iface" "$serial" "$ro" "$boot" "$bdcfg"
done

if [[ -n "$SMB$SMBD_CONF" ]] && ! [[ -x /usr/sbin/smbd ]]; then
	echo "run-vm: --smb/--smbd-conf need /usr/sbin/smbd on the host (package samba, scripts/setup.sh)" >&2
	exit 2
fi
if [[ -n "$TAP" ]]; then
	[[ -z "$SMB$SMBD_CONF$NETBOOT" ]] || { echo "run-vm: --tap excludes --smb, --smbd-conf and --netboot" >&2; exit 2; }
	nicdev="${NIC:-virtio-net-pci},netdev=n0"
	((BOOT_NIC)) && nicdev+=",bootindex=0"
	[[ -z "$MAC" ]] || nicdev+=",mac=$MAC"
	args+=(-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" -device "$nicdev")
elif [[ -n "$SMB$SMBD_CONF$NIC" ]]; then
	netdev="user,id=n0"
	if [[ -n "$SMB" ]]; then
		[[ -d "$SMB" ]] || { echo "run-vm: --smb directory $SMB does not exist" >&2; exit 2; }
		netdev+=",smb=$(cd "$SMB" && pwd)"
	fi
	if [[ -n "$SMBD_CONF" ]]; then
		[[ -f "$SMBD_CONF" ]] || { echo "run-vm: --smbd-conf $SMBD_CONF does not exist" >&2; exit 2; }
		conf="$(cd "$(dirname "$SMBD_CONF")" && pwd)/$(basename "$SMBD_CONF")"
		[[ "$conf" != *,* ]] || { echo "run-vm: --smbd-conf path must not contain a comma" >&2; exit 2; }
		# What QEMU's smb= does, at another address: slirp runs the command per connection
		# with the guest's TCP stream on its stdin/stdout (smbd's inetd mode).
		netdev+=",guestfwd=tcp:10.0.2.5:445-cmd:/usr/sbin/smbd -l $(dirname "$conf") -s $conf"
	fi
	nicdev="${NIC:-virtio-net-pci},netdev=n0"
	if [[ -n "$NETBOOT" ]]; then
		netdev+=",tftp=$(cd "$nb_dir" && pwd),bootfile=$nb_file"
	fi
	((BOOT_NIC)) && nicdev+=",bootindex=0"
	args+=(-netdev "$netdev" -device "$nicdev")
fi

[[ -z "$PIDFILE" ]] || args+=(-pidfile "$PIDFILE")
if [[ -n "$SERIAL_SOCK" ]]; then
	# logfile= keeps the log whole whether or not a client is connected
	args+=(-chardev "socket,id=ser0,path=$SERIAL_SOCK,server=on,wait=off,logfile=$LOG" -serial chardev:ser0)
else
	args+=(-serial "file:$LOG")
fi
[[ -z "$SERIAL2" ]] || args+=(-serial "file:$SERIAL2")
start=$(date +%s)
qemu-system-x86_64 "${args[@]}" >"$WORK/qemu.out" 2>&1 &
QPID=$!

result="" rc=125
while :; do
	if line="$(grep -a -m1 -o 'IRONCLONE-RESULT: [a-z]* rc=[0-9]*' "$LOG")"; then
		result="$line"
	fi
	if [[ -n "$EXPECT" ]] && grep -a -q -F -- "$EXPECT" "$LOG"; then
		result="expect"
		break
	fi
	if ! kill -0 "$QPID" 2>/dev/null; then
		break
	fi
	if [[ -n "$result" && -z "$EXPECT" ]]; then
		# The job powers off right after its result line; give it a moment, then stop it.
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QPID" 2>/dev/null && sleep 1; done
		break
	fi
	if (($(date +%s) - start >= TIMEOUT)); then
		result="${result:-timeout}"
		break
	fi
	sleep 0.5
done
elapsed=$(($(date +%s) - start))
if line="$(grep -a -m1 -o 'IRONCLONE-RESULT: [a-z]* rc=[0-9]*' "$LOG")"; then
	[[ "$result" == expect ]] || result="$line"
fi

case "$result" in
expect) rc=0 ;;
"IRONCLONE-RESULT: ok"*) rc=0 ;;
"IRONCLONE-RESULT: fail"*)
	rc="${result##*rc=}"
	((rc != 0)) || rc=1
	;;
timeout) rc=124 ;;
*) rc=125 ;;
esac
echo "run-vm: ${result:-no result} after ${elapsed}s (rc=$rc)"
if ((rc != 0)); then
	echo "run-vm: serial log: $LOG" >&2
	[[ -s "$WORK/qemu.out" ]] && sed 's/^/qemu: /' "$WORK/qemu.out" >&2
fi
exit "$rc"
