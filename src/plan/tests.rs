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
