use super::*;

const GIB: u64 = 1 << 30;

fn part(number: u32, start: u64, size: u64, role: Role, min: u64) -> PartIn {
    PartIn {
        number,
        start,
        size,
        role,
        fs: "ext4".into(),
        used_bytes: min,
        min_size: min,
        can_grow: true,
        max_target_sector: None,
        recreate_min: None,
        logical: false,
        keep_start: false,
    }
}

/// A 20 GiB GPT disk: 512 MiB ESP, 2 GiB swap, the rest an ext4 root with 3 GiB used.
fn gpt_input(target: u64) -> PlanInput {
    PlanInput {
        source_size: 20 * GIB,
        source_sector: 512,
        target_size: target,
        target_sector: 512,
        table: TableFlavour::Gpt {
            entries_bytes: 128 * 128,
        },
        partitions: vec![
            part(1, MIB, 512 * MIB, Role::Esp, 512 * MIB),
            part(2, 513 * MIB, 2 * GIB, Role::Swap, 2 * GIB),
            part(3, 513 * MIB + 2 * GIB, 17 * GIB, Role::Data, 3 * GIB),
        ],
        mode: LayoutMode::Proportional,
        sizes: BTreeMap::new(),
    }
}

fn check_invariants(input: &PlanInput, plan: &Plan) {
    let area = fit::usable_area(input.target_size, input.target_sector, input.table).unwrap();
    let mut prev_end = area.start;
    for p in &plan.partitions {
        assert!(p.new_start >= prev_end, "overlap at partition {}", p.number);
        assert_eq!(p.new_start % plan.alignment, 0, "unaligned {}", p.number);
        assert!(
            p.new_start + p.new_size <= area.end,
            "past end {}",
            p.number
        );
        let src = input
            .partitions
            .iter()
            .find(|s| s.number == p.number)
            .unwrap();
        assert!(p.new_size >= src.min_size, "below minimum {}", p.number);
        prev_end = p.new_start + p.new_size;
    }
}

#[test]
fn grow_keeps_fixed_partitions_and_starts() {
    let input = gpt_input(30 * GIB);
    let plan = plan(&input).unwrap();
    check_invariants(&input, &plan);
    let esp = plan.get(1).unwrap();
    let swap = plan.get(2).unwrap();
    let root = plan.get(3).unwrap();
    assert_eq!((esp.new_start, esp.new_size), (MIB, 512 * MIB));
    assert_eq!((swap.new_start, swap.new_size), (513 * MIB, 2 * GIB));
    assert_eq!(root.new_start, 513 * MIB + 2 * GIB);
    assert_eq!(root.action, Action::Grow);
    // The root takes everything up to the aligned usable end.
    assert!(30 * GIB - (root.new_start + root.new_size) < 2 * MIB);
}

#[test]
fn shrink_to_smaller_disk_when_data_fits() {
    let input = gpt_input(8 * GIB);
    let plan = plan(&input).unwrap();
    check_invariants(&input, &plan);
    let root = plan.get(3).unwrap();
    assert_eq!(root.action, Action::Shrink);
    assert!(root.new_size >= 3 * GIB);
}

#[test]
fn too_small_says_how_much_is_missing() {
    let input = gpt_input(5 * GIB);
    match plan(&input) {
        Err(PlanError::TooSmall {
            needed,
            available,
            missing,
        }) => {
            assert_eq!(missing, needed - available);
            // ESP + swap + 3 GiB root + 1 MiB head, minus what the disk offers.
            assert!(
                missing > 512 * MIB && missing < 600 * MIB,
                "missing {missing}"
            );
        }
        other => panic!("expected TooSmall, got {other:?}"),
    }
}

#[test]
fn proportional_between_two_data_partitions() {
    let mut input = gpt_input(40 * GIB);
    input.partitions = vec![
        part(1, MIB, 10 * GIB, Role::Data, GIB),
        part(2, MIB + 10 * GIB, 10 * GIB, Role::Data, GIB),
    ];
    let plan = plan(&input).unwrap();
    check_invariants(&input, &plan);
    let a = plan.get(1).unwrap().new_size;
    let b = plan.get(2).unwrap().new_size;
    assert!(a.abs_diff(b) <= MIB);
    assert!(a > 19 * GIB);
}

#[test]
fn minimum_pins_and_the_rest_is_shared() {
    let mut input = gpt_input(12 * GIB);
    // p1 is small in the source but nearly full; p2 is big and nearly empty.
    input.partitions = vec![
        part(1, MIB, 2 * GIB, Role::Data, 2 * GIB - 10 * MIB),
        part(2, MIB + 2 * GIB, 18 * GIB, Role::Data, GIB),
    ];
    let plan = plan(&input).unwrap();
    check_invariants(&input, &plan);
    assert!(plan.get(1).unwrap().new_size >= 2 * GIB - 10 * MIB);
}

#[test]
fn explicit_sizes_and_max() {
    let mut input = gpt_input(30 * GIB);
    input
        .partitions
        .push(part(4, 20 * GIB - 10 * MIB, 5 * MIB, Role::Data, MIB));
    input.partitions[2].size = 17 * GIB - 20 * MIB;
    input.sizes.insert(3, SizeRequest::Bytes(10 * GIB));
    input.sizes.insert(4, SizeRequest::Max);
    let plan = plan(&input).unwrap();
    check_invariants(&input, &plan);
    assert_eq!(plan.get(3).unwrap().new_size, 10 * GIB);
    assert!(plan.get(4).unwrap().new_size > 15 * GIB);

    input.sizes.insert(3, SizeRequest::Bytes(GIB));
    assert!(matches!(
        plan_err(&input),
        PlanError::BelowMinimum { number: 3, .. }
    ));
    input.sizes.insert(3, SizeRequest::Max);
    assert_eq!(plan_err(&input), PlanError::TwoMax);
    input.sizes.clear();
    input.sizes.insert(9, SizeRequest::Max);
    assert_eq!(plan_err(&input), PlanError::NoSuchPartition { number: 9 });
}

fn plan_err(input: &PlanInput) -> PlanError {
    plan(input).unwrap_err()
}

#[test]
fn keep_mode_fits_or_refuses() {
    let mut input = gpt_input(30 * GIB);
    input.mode = LayoutMode::Keep;
    let p = plan(&input).unwrap();
    for (o, n) in input.partitions.iter().zip(&p.partitions) {
        assert_eq!((o.start, o.size), (n.new_start, n.new_size));
        assert_eq!(n.action, Action::Copy);
    }
    input.target_size = 10 * GIB;
    assert!(matches!(
        plan_err(&input),
        PlanError::KeepDoesNotFit { number: 3, .. }
    ));
}

#[test]
fn cannot_grow_stays_put() {
    let mut input = gpt_input(40 * GIB);
    input.partitions[2].can_grow = false;
    input.partitions[2].fs = "raw".into();
    let plan = plan(&input).unwrap();
    assert_eq!(plan.get(3).unwrap().new_size, 17 * GIB);
    assert_eq!(plan.get(3).unwrap().action, Action::Copy);
}

#[test]
fn sector_size_conversion_refuses_small_units() {
    let mut input = gpt_input(30 * GIB);
    input.target_sector = 4096;
    input.partitions[2].fs = "ntfs".into();
    input.partitions[2].max_target_sector = Some(512);
    assert!(matches!(
        plan_err(&input),
        PlanError::SectorTooLarge { number: 3, .. }
    ));
    input.partitions[2].max_target_sector = Some(4096);
    let plan = plan(&input).unwrap();
    check_invariants(&input, &plan);
    // 4 KiB sectors: the GPT array takes 4 sectors, the first partition still at 1 MiB.
    assert_eq!(plan.get(1).unwrap().new_start, MIB);
}

#[test]
fn mbr_logicals_get_room_for_their_ebr() {
    let mut input = gpt_input(30 * GIB);
    input.table = TableFlavour::Mbr;
    input.partitions = vec![
        part(1, MIB, 5 * GIB, Role::Data, GIB),
        part(2, MIB + 5 * GIB, 10 * GIB, Role::Extended, 0),
        part(5, 2 * MIB + 5 * GIB, 4 * GIB, Role::Data, GIB),
        part(6, 3 * MIB + 9 * GIB, 5 * GIB, Role::Data, GIB),
    ];
    for p in &mut input.partitions[2..] {
        p.logical = true;
    }
    let plan = plan(&input).unwrap();
    assert!(plan.get(2).is_none());
    let p1 = plan.get(1).unwrap();
    let p5 = plan.get(5).unwrap();
    let p6 = plan.get(6).unwrap();
    assert!(p5.new_start >= p1.new_start + p1.new_size + MIB);
    assert!(p6.new_start >= p5.new_start + p5.new_size + MIB);
}

#[test]
fn mbr_two_tib_limit() {
    let mut input = gpt_input(3 << 40);
    input.table = TableFlavour::Mbr;
    assert!(matches!(
        plan_err(&input),
        PlanError::MbrLimit { number: 3, .. }
    ));
}

#[test]
fn dos_alignment_is_kept() {
    let mut input = gpt_input(30 * GIB);
    input.table = TableFlavour::Mbr;
    input.partitions = vec![part(1, 63 * 512, 10 * GIB, Role::Data, GIB)];
    let plan = plan(&input).unwrap();
    assert_eq!(plan.alignment, 512);
    assert_eq!(plan.get(1).unwrap().new_start, 63 * 512);
}

#[test]
fn tiny_target_is_refused() {
    let input = gpt_input(16 * 1024);
    assert!(plan(&input).is_err());
}

/// A GPT disk as `sgdisk -n 3:0:0` leaves it: the last partition ends at the last
/// usable LBA, which is not on a MiB boundary.
fn filled_to_the_end(disk: u64) -> PlanInput {
    let mut input = gpt_input(disk);
    input.source_size = disk;
    let area = fit::usable_area(disk, 512, input.table).unwrap();
    let p3 = &mut input.partitions[2];
    p3.size = area.end - p3.start;
    assert_ne!(p3.size % MIB, 0, "the fixture must end off the MiB grid");
    input
}

#[test]
fn same_size_disk_gets_the_source_layout() {
    let input = filled_to_the_end(20 * GIB);
    let plan = plan(&input).unwrap();
    for (o, n) in input.partitions.iter().zip(&plan.partitions) {
        assert_eq!(
            (o.start, o.size),
            (n.new_start, n.new_size),
            "p{}",
            o.number
        );
        assert_eq!(n.action, Action::Copy, "p{}", o.number);
    }
}

#[test]
fn same_size_keeps_free_space_where_it_was() {
    // 5 GiB left free after p3: the same-size target keeps it free (the table is the
    // source's), where a proportional layout would have grown p3 into it.
    let mut input = gpt_input(20 * GIB);
    input.partitions[2].size = 12 * GIB;
    let plan = plan(&input).unwrap();
    assert_eq!(plan.get(3).unwrap().new_size, 12 * GIB);
    assert_eq!(plan.get(3).unwrap().action, Action::Copy);
}

/// An empty GPT disk of `disk` bytes, as the source and the target.
fn empty_gpt(disk: u64) -> PlanInput {
    let mut input = gpt_input(disk);
    input.source_size = disk;
    input.partitions.clear();
    input
}

#[test]
fn raw_partition_filling_the_disk_fits_a_same_size_disk() {
    let mut input = empty_gpt(256 * MIB);
    input.partitions = vec![{
        let area = fit::usable_area(256 * MIB, 512, input.table).unwrap();
        let mut p = part(1, MIB, area.end - MIB, Role::Data, 0);
        p.fs = "raw".into();
        p.min_size = p.size;
        p.can_grow = false;
        p
    }];
    let plan = plan(&input).unwrap();
    let p = plan.get(1).unwrap();
    assert_eq!(
        (p.new_start, p.new_size, p.action),
        (MIB, input.partitions[0].size, Action::Copy)
    );
    // A target one sector smaller cannot hold it: the refusal is about that sector,
    // not about alignment.
    input.target_size -= 512;
    match plan_err(&input) {
        PlanError::TooSmall { missing, .. } => assert_eq!(missing, 512),
        other => panic!("expected TooSmall, got {other:?}"),
    }
}

#[test]
fn raw_last_partition_is_not_rounded_on_a_smaller_disk() {
    // p1 can shrink, p2 (raw) fills the source to its end: a smaller target that
    // holds p2 exactly and p1 shrunk must not be refused by p2's rounding.
    let mut input = empty_gpt(2 * GIB);
    let area = fit::usable_area(2 * GIB, 512, input.table).unwrap();
    let mut p2 = part(2, GIB + MIB, area.end - GIB - MIB, Role::Data, 0);
    p2.fs = "raw".into();
    p2.min_size = p2.size;
    p2.can_grow = false;
    input.partitions = vec![part(1, MIB, GIB, Role::Data, 100 * MIB), p2.clone()];
    input.target_size = 2 * GIB - 512 * MIB;
    let plan = plan(&input).unwrap();
    check_invariants(&input, &plan);
    assert_eq!(plan.get(2).unwrap().new_size, p2.size);
    assert_eq!(plan.get(1).unwrap().action, Action::Shrink);
}

#[test]
fn larger_disk_never_shrinks_and_fills_to_the_last_usable_lba() {
    let src = filled_to_the_end(20 * GIB);
    // From one sector more to 50% more: nothing shrinks, the last partition ends at
    // the target's last usable LBA.
    for extra in [512, 17 * 1024, MIB + 512, 10 * GIB] {
        let mut input = src.clone();
        input.target_size += extra;
        let plan = plan(&input).unwrap();
        check_invariants(&input, &plan);
        let area = fit::usable_area(input.target_size, 512, input.table).unwrap();
        for (o, n) in input.partitions.iter().zip(&plan.partitions) {
            assert!(n.new_size >= o.size, "+{extra}: p{} shrank", o.number);
            assert_eq!(n.new_start, o.start, "+{extra}: p{} moved", o.number);
        }
        let last = plan.partitions.last().unwrap();
        assert_eq!(last.new_start + last.new_size, area.end, "+{extra}");
        assert_eq!(last.action, Action::Grow, "+{extra}");
    }
}

/// A Windows BIOS/MBR disk: 500 MiB System Reserved (bootmgr, BCD), D: data, C:
/// Windows, the BCD naming System Reserved and C: by their starts.
fn windows_mbr(target: u64) -> PlanInput {
    let mut input = gpt_input(target);
    input.table = TableFlavour::Mbr;
    input.partitions = vec![
        part(1, MIB, 500 * MIB, Role::WindowsBoot, 30 * MIB),
        part(2, 501 * MIB, 4 * GIB, Role::Data, GIB),
        part(3, 501 * MIB + 4 * GIB, 15 * GIB, Role::Data, 5 * GIB),
    ];
    input.partitions[0].keep_start = true;
    input.partitions[2].keep_start = true;
    input
}

#[test]
fn windows_boot_partition_and_bcd_starts_stay() {
    for target in [30 * GIB, 12 * GIB] {
        let input = windows_mbr(target);
        let plan = plan(&input).unwrap();
        check_invariants(&input, &plan);
        let sys = plan.get(1).unwrap();
        assert_eq!((sys.new_start, sys.new_size), (MIB, 500 * MIB), "{target}");
        // D: sits in front of C:, so it keeps its size and C: its start; C: takes
        // the whole growth or shrink.
        let d = plan.get(2).unwrap();
        assert_eq!((d.new_start, d.new_size), (501 * MIB, 4 * GIB), "{target}");
        let c = plan.get(3).unwrap();
        assert_eq!(c.new_start, 501 * MIB + 4 * GIB, "{target}");
        let want = if target > 20 * GIB {
            Action::Grow
        } else {
            Action::Shrink
        };
        assert_eq!(c.action, want, "{target}");
    }
}

#[test]
fn bcd_start_moves_only_when_the_target_cannot_keep_it() {
    // 8 GiB cannot hold System Reserved + D: at 4 GiB + C:'s 5 GiB minimum: D: shrinks
    // and C: moves (the restore then rewrites the BCD).
    let input = windows_mbr(8 * GIB);
    let plan = plan(&input).unwrap();
    check_invariants(&input, &plan);
    assert_eq!(plan.get(1).unwrap().new_size, 500 * MIB);
    assert_eq!(plan.get(2).unwrap().action, Action::Shrink);
    assert!(plan.get(3).unwrap().new_start < 501 * MIB + 4 * GIB);
    // Without BCD starts to keep, D: and C: share the space as before.
    let mut free = windows_mbr(30 * GIB);
    for p in &mut free.partitions {
        p.keep_start = false;
    }
    let shared = super::plan(&free).unwrap();
    assert_eq!(shared.get(2).unwrap().action, Action::Grow);
}

/// An ESP (FAT, 512-byte sectors) onto 4096-byte sectors: re-created, not refused;
/// a small one grows to the new FAT32's minimum, a large one keeps its size.
#[test]
fn esp_onto_larger_sectors_is_recreated() {
    let mut input = gpt_input(30 * GIB);
    input.target_sector = 4096;
    input.partitions[0].fs = "fat32".into();
    input.partitions[0].max_target_sector = Some(512);
    input.partitions[0].recreate_min = Some(257 * MIB);
    let p = plan(&input).unwrap();
    check_invariants(&input, &p);
    let esp = p.get(1).unwrap();
    assert_eq!(esp.action, Action::Recreate);
    assert_eq!(
        (esp.new_start, esp.new_size, esp.old_size),
        (MIB, 512 * MIB, 512 * MIB)
    );

    input.partitions[0].size = 100 * MIB;
    input.partitions[0].min_size = 100 * MIB;
    let p = plan(&input).unwrap();
    check_invariants(&input, &p);
    let esp = p.get(1).unwrap();
    assert_eq!(esp.action, Action::Recreate);
    assert_eq!((esp.new_size, esp.old_size), (257 * MIB, 100 * MIB));

    // --layout keep: the grown ESP fits the gap before the swap partition...
    input.mode = LayoutMode::Keep;
    let p = plan(&input).unwrap();
    assert_eq!(p.get(1).unwrap().new_size, 257 * MIB);
    assert_eq!(p.get(2).unwrap().new_start, 513 * MIB);
    // ...and is refused where it would run into it.
    input.partitions[1].start = 101 * MIB;
    assert!(matches!(
        plan_err(&input),
        PlanError::KeepOverlap {
            number: 1,
            next: 2,
            ..
        }
    ));

    // Same sectors: copied as it is; nothing to re-create with: refused as before.
    input.mode = LayoutMode::Proportional;
    input.partitions[1].start = 513 * MIB;
    input.target_sector = 512;
    assert_eq!(plan(&input).unwrap().get(1).unwrap().action, Action::Copy);
    input.target_sector = 4096;
    input.partitions[0].recreate_min = None;
    assert!(matches!(
        plan_err(&input),
        PlanError::SectorTooLarge { number: 1, .. }
    ));
}
