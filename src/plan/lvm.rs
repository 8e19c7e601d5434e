//! How the logical volumes of a PV share a change in the PV's size. Pure, in whole
//! extents: the restore's planner and the restore itself call it with the same input
//! and so agree on every LV's new size.
//!
//! The root LV (the largest visible LV whose filesystem can be resized, docs/RESIZE.md)
//! takes the change first: all of a growth, and a shrink down to its minimum before
//! any other LV gives up room. Then the other resizable LVs shrink, the largest
//! first. Swap, hidden and raw LVs and filesystems that cannot shrink keep their size.

/// One LV as the sharing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvIn {
    pub name: String,
    pub extents: u64,
    /// Its least size in extents (`extents` when it cannot shrink).
    pub min_extents: u64,
    /// Its filesystem can grow in place.
    pub can_grow: bool,
    pub visible: bool,
}

impl LvIn {
    fn resizable(&self) -> bool {
        self.visible && (self.can_grow || self.min_extents < self.extents)
    }
}

/// The root LV: the largest visible resizable one (the first of equals).
pub fn root(lvs: &[LvIn]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, l) in lvs.iter().enumerate() {
        if l.resizable() && best.is_none_or(|b| lvs.get(b).is_none_or(|x| l.extents > x.extents)) {
            best = Some(i);
        }
    }
    best
}

/// The least extents the LVs can live in.
pub fn min_extents(lvs: &[LvIn]) -> u64 {
    lvs.iter()
        .fold(0u64, |a, l| a.saturating_add(l.min_extents.min(l.extents)))
}

/// Each LV's new extent count in a PV of `available` extents, or `None` when even
/// their minimums do not fit.
pub fn share(lvs: &[LvIn], available: u64) -> Option<Vec<u64>> {
    let mut out: Vec<u64> = lvs.iter().map(|l| l.extents).collect();
    let used = out.iter().fold(0u64, |a, &n| a.saturating_add(n));
    let root = root(lvs);
    if available >= used {
        // Growth goes to the root LV when its filesystem can follow; else it stays free.
        if let Some(r) = root.filter(|&r| lvs.get(r).is_some_and(|l| l.can_grow)) {
            if let Some(n) = out.get_mut(r) {
                *n = n.saturating_add(available - used);
            }
        }
        return Some(out);
    }
    let mut missing = used - available;
    let mut order: Vec<usize> = (0..lvs.len())
        .filter(|&i| Some(i) != root && lvs.get(i).is_some_and(LvIn::resizable))
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lvs.get(i).map_or(0, |l| l.extents)));
    for i in root.into_iter().chain(order) {
        let (Some(l), Some(n)) = (lvs.get(i), out.get_mut(i)) else {
            continue;
        };
        let give = n.saturating_sub(l.min_extents).min(missing);
        *n -= give;
        missing -= give;
        if missing == 0 {
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(name: &str, extents: u64, min: u64, grow: bool) -> LvIn {
        LvIn {
            name: name.into(),
            extents,
            min_extents: min,
            can_grow: grow,
            visible: true,
        }
    }

    #[test]
    fn the_root_lv_takes_the_change_first() {
        let lvs = vec![
            lv("root", 7, 3, true),
            lv("data", 4, 2, true),
            lv("swap", 2, 2, false),
        ];
        assert_eq!(root(&lvs), Some(0));
        assert_eq!(share(&lvs, 20), Some(vec![14, 4, 2]));
        assert_eq!(share(&lvs, 13), Some(vec![7, 4, 2]));
        assert_eq!(share(&lvs, 10), Some(vec![4, 4, 2]));
        assert_eq!(share(&lvs, 8), Some(vec![3, 3, 2]));
        assert_eq!(share(&lvs, 7), Some(vec![3, 2, 2]));
        assert_eq!(share(&lvs, 6), None);
        assert_eq!(min_extents(&lvs), 7);
    }

    #[test]
    fn hidden_and_fixed_lvs_keep_their_size() {
        let mut hidden = lv("pool_tdata", 9, 1, true);
        hidden.visible = false;
        let lvs = vec![hidden, lv("xfs", 5, 5, true), lv("swap", 2, 2, false)];
        assert_eq!(root(&lvs), Some(1));
        assert_eq!(share(&lvs, 20), Some(vec![9, 9, 2]));
        assert_eq!(share(&lvs, 15), None);
        let fixed = vec![lv("raw", 5, 5, false)];
        assert_eq!(root(&fixed), None);
        assert_eq!(share(&fixed, 9), Some(vec![5]));
    }
}
