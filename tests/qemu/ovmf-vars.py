#!/usr/bin/env python3
"""Lists the Boot#### entries and BootOrder stored in an OVMF variable store file
(OVMF_VARS*.fd, the pflash image QEMU writes through).

Why: the NVRAM tests must see what the firmware actually kept in flash after a VM
ran, with a reader that shares no code with ironclone's own EFI_LOAD_OPTION decoder
(src/bootfix/efi_load_option.rs). The layout is EDK2's: a firmware volume header,
a VARIABLE_STORE_HEADER, then 4-byte-aligned variables (authenticated headers in
OVMF builds with Secure Boot support, plain ones otherwise), each with a State byte
whose bits are cleared as the variable is added and later deleted.

usage: ovmf-vars.py VARS.fd [--efivarfs NAME OUT]
  prints one JSON object:
  {"boot_order": ["0003", ...], "entries": [{"number": "0003", "description": ...,
   "active": true, "partition_guid": "..." (GPT) or "mbr_signature": "0x..." (MBR),
   "partition_number": 1, "start": 2048,
   "size": 131072, "file": "\\EFI\\...", "path": "<node types>"}, ...]}
  --efivarfs NAME OUT also writes global variable NAME (e.g. Boot0003) to OUT the way
  Linux's efivarfs takes it: 4 bytes of attributes (little-endian), then the value.
"""
import json
import struct
import sys
import uuid

AUTH_STORE = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792")
PLAIN_STORE = uuid.UUID("ddcf3616-3275-4164-98b6-fe85707ffe7d")
GLOBAL_VARIABLE = uuid.UUID("8be4df61-93ca-11d2-aa0d-00e098032b8c")
VAR_START_ID = 0x55AA
VAR_ADDED = 0x3F
VAR_ADDED_IN_DELETE = 0x3E  # VAR_ADDED & VAR_IN_DELETED_TRANSITION: still the live copy


def die(msg):
    print(f"ovmf-vars: {msg}", file=sys.stderr)
    sys.exit(1)


def variables(fd):
    if fd[40:44] != b"_FVH":
        die("no firmware volume header (_FVH) at offset 40")
    (hdr_len,) = struct.unpack_from("<H", fd, 48)
    store = hdr_len
    sig = uuid.UUID(bytes_le=bytes(fd[store : store + 16]))
    (size,) = struct.unpack_from("<I", fd, store + 16)
    if sig == AUTH_STORE:
        auth = True
    elif sig == PLAIN_STORE:
        auth = False
    else:
        die(f"unknown variable store signature {sig} at offset {store}")
    end = min(len(fd), store + size)
    off = store + 28
    found = {}
    while off + 32 <= end:
        start_id, state, _res, attrs = struct.unpack_from("<HBBI", fd, off)
        if start_id != VAR_START_ID:
            break
        if auth:
            name_size, data_size = struct.unpack_from("<II", fd, off + 36)
            guid = uuid.UUID(bytes_le=bytes(fd[off + 44 : off + 60]))
            name_off = off + 60
        else:
            name_size, data_size = struct.unpack_from("<II", fd, off + 8)
            guid = uuid.UUID(bytes_le=bytes(fd[off + 16 : off + 32]))
            name_off = off + 32
        data_off = name_off + name_size
        nxt = (data_off + data_size + 3) & ~3
        if nxt > end or name_size > 4096:
            die(f"variable at offset {off} runs past the store")
        name = fd[name_off:data_off].decode("utf-16-le").rstrip("\0")
        if state in (VAR_ADDED, VAR_ADDED_IN_DELETE):
            key = (guid, name)
            # A fully added copy wins over one caught in the middle of its replacement.
            if state == VAR_ADDED or key not in found:
                found[key] = (attrs, bytes(fd[data_off : data_off + data_size]))
        off = nxt
    return found


def device_path(buf):
    nodes, hd, file_ = [], None, None
    i = 0
    while i + 4 <= len(buf):
        t, st, ln = struct.unpack_from("<BBH", buf, i)
        if ln < 4:
            die(f"device path node of length {ln}")
        data = buf[i + 4 : i + ln]
        if t == 0x7F and st == 0xFF:
            break
        nodes.append(f"{t:02x}/{st:02x}")
        if t == 4 and st == 1 and len(data) == 38:
            num, start, size = struct.unpack_from("<IQQ", data, 0)
            hd = {"partition_number": num, "start": start, "size": size}
            if data[37] == 2:  # signature type GUID
                hd["partition_guid"] = str(uuid.UUID(bytes_le=bytes(data[20:36])))
            elif data[37] == 1 and data[36] == 1:  # MBR disk signature (0x1B8), PC-AT MBR
                hd["mbr_signature"] = f"0x{struct.unpack_from('<I', data, 20)[0]:08x}"
        elif t == 4 and st == 4:
            file_ = data.decode("utf-16-le").rstrip("\0")
        i += ln
    return nodes, hd, file_


def load_option(value):
    attrs, path_len = struct.unpack_from("<IH", value, 0)
    i = 6
    while value[i : i + 2] != b"\0\0":
        i += 2
    desc = value[6:i].decode("utf-16-le")
    nodes, hd, file_ = device_path(value[i + 2 : i + 2 + path_len])
    entry = {"description": desc, "active": bool(attrs & 1), "file": file_, "path": " ".join(nodes)}
    if hd:
        entry.update(hd)
    return entry


def main():
    args = sys.argv[1:]
    if len(args) not in (1, 4) or (len(args) == 4 and args[1] != "--efivarfs"):
        die("usage: ovmf-vars.py VARS.fd [--efivarfs NAME OUT]")
    with open(args[0], "rb") as f:
        fd = f.read()
    found = variables(fd)
    if len(args) == 4:
        var = found.get((GLOBAL_VARIABLE, args[2]))
        if var is None:
            die(f"no global variable {args[2]} in {args[0]}")
        with open(args[3], "wb") as f:
            f.write(struct.pack("<I", var[0]) + var[1])
    out = {"boot_order": [], "entries": []}
    for (guid, name), (_attrs, value) in sorted(found.items(), key=lambda kv: kv[0][1]):
        if guid != GLOBAL_VARIABLE:
            continue
        if name == "BootOrder":
            out["boot_order"] = [f"{n:04X}" for n in struct.unpack(f"<{len(value) // 2}H", value)]
        elif len(name) == 8 and name.startswith("Boot") and all(c in "0123456789ABCDEF" for c in name[4:]):
            e = {"number": name[4:]}
            e.update(load_option(value))
            out["entries"].append(e)
    json.dump(out, sys.stdout, indent=1)
    print()


main()
