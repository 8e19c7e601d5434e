//! The superblock's validation: the checks both modes share, the lenient bounds a
//! rescue walk needs, and the strict ones imaging needs (`Check`).

use super::*;

impl Superblock {
    fn bad(
        device: &str,
        field: &'static str,
        offset: usize,
        value: u64,
        why: &'static str,
    ) -> ExtDecodeError {
        ExtDecodeError::BadField {
            device: device.into(),
            field,
            offset,
            value,
            why,
        }
    }

    /// The checks both modes need: the block size, the group sizes that bound every
    /// per-group loop, and the inode size that strides every inode table.
    fn validate_common(&self, dev: &str) -> Result<(), ExtDecodeError> {
        // 64 KiB is the largest block size the kernel and mke2fs accept.
        if self.s_log_block_size > 6 {
            return Err(Self::bad(
                dev,
                "s_log_block_size",
                S_LOG_BLOCK_SIZE,
                self.s_log_block_size.into(),
                "block size over 64 KiB",
            ));
        }
        if self.s_inodes_per_group == 0 {
            return Err(Self::bad(
                dev,
                "s_inodes_per_group",
                S_INODES_PER_GROUP,
                0,
                "zero",
            ));
        }
        let isz = self.inode_size();
        if isz < 128 || !isz.is_power_of_two() || isz > self.block_size() {
            return Err(Self::bad(
                dev,
                "s_inode_size",
                S_INODE_SIZE,
                isz,
                "must be a power of two from 128 to the block size",
            ));
        }
        Ok(())
    }

    pub(super) fn validate_lenient(&self, dev: &str) -> Result<(), ExtDecodeError> {
        self.validate_common(dev)?;
        let bits = 8 * self.block_size();
        if self.s_blocks_per_group == 0 {
            return Err(Self::bad(
                dev,
                "s_blocks_per_group",
                S_BLOCKS_PER_GROUP,
                0,
                "zero",
            ));
        }
        // The block bitmap counts clusters: with bigalloc a group holds a bitmap's
        // worth of clusters, so s_blocks_per_group is that times the cluster ratio.
        let cpg = self.s_clusters_per_group_eff();
        if cpg == 0 || u64::from(cpg) > bits {
            return Err(Self::bad(
                dev,
                "s_clusters_per_group",
                self.clusters_per_group_offset(),
                cpg.into(),
                "zero or more than one bitmap block holds",
            ));
        }
        if u64::from(self.s_inodes_per_group) > bits {
            return Err(Self::bad(
                dev,
                "s_inodes_per_group",
                S_INODES_PER_GROUP,
                self.s_inodes_per_group.into(),
                "more than one bitmap block holds",
            ));
        }
        let ds = self.desc_size();
        if !(32..=1024).contains(&ds) || !ds.is_power_of_two() {
            return Err(Self::bad(
                dev,
                "s_desc_size",
                S_DESC_SIZE,
                ds,
                "must be a power of two from 32 to 1024",
            ));
        }
        Ok(())
    }

    pub(super) fn validate_strict(&self, dev: &str) -> Result<(), ExtDecodeError> {
        if self.s_feature_incompat & EXT4_FEATURE_INCOMPAT_JOURNAL_DEV != 0 {
            return Err(ExtDecodeError::JournalDev { device: dev.into() });
        }
        self.validate_common(dev)?;
        if self.bigalloc()
            && (self.s_log_cluster_size < self.s_log_block_size
                || self.s_log_cluster_size - self.s_log_block_size > 16
                || self.s_log_cluster_size > 20)
        {
            return Err(Self::bad(
                dev,
                "s_log_cluster_size",
                S_LOG_CLUSTER_SIZE,
                self.s_log_cluster_size.into(),
                "cluster size out of range for the block size",
            ));
        }
        let bits_per_bitmap = 8 * self.block_size() as u32;
        let cpg = self.s_clusters_per_group_eff();
        if cpg == 0 || cpg > bits_per_bitmap {
            return Err(Self::bad(
                dev,
                "s_clusters_per_group",
                self.clusters_per_group_offset(),
                cpg.into(),
                "zero or more than one bitmap block holds",
            ));
        }
        let expected_bpg = u64::from(cpg) * self.cluster_ratio();
        if u64::from(self.s_blocks_per_group) != expected_bpg {
            return Err(Self::bad(
                dev,
                "s_blocks_per_group",
                S_BLOCKS_PER_GROUP,
                self.s_blocks_per_group.into(),
                "does not match clusters per group times the cluster ratio",
            ));
        }
        let fdb_ok = match self.s_first_data_block {
            0 => true,
            1 => self.block_size() == 1024 && !self.bigalloc(),
            _ => false,
        };
        if !fdb_ok {
            return Err(Self::bad(
                dev,
                "s_first_data_block",
                S_FIRST_DATA_BLOCK,
                self.s_first_data_block.into(),
                "must be 1 for 1 KiB blocks and 0 otherwise",
            ));
        }
        if self.s_blocks_count <= u64::from(self.s_first_data_block) {
            return Err(Self::bad(
                dev,
                "s_blocks_count",
                S_BLOCKS_COUNT_LO,
                self.s_blocks_count,
                "no blocks after s_first_data_block",
            ));
        }
        if self.s_blocks_count.checked_mul(self.block_size()).is_none() {
            return Err(Self::bad(
                dev,
                "s_blocks_count",
                S_BLOCKS_COUNT_LO,
                self.s_blocks_count,
                "filesystem size overflows 64 bits",
            ));
        }
        let ds = self.desc_size();
        if self.is_64bit() && (!(64..=1024).contains(&ds) || !ds.is_power_of_two()) {
            return Err(Self::bad(
                dev,
                "s_desc_size",
                S_DESC_SIZE,
                self.s_desc_size.into(),
                "64bit descriptors must be a power of two from 64 to 1024",
            ));
        }
        if ds > self.block_size() {
            return Err(Self::bad(
                dev,
                "s_desc_size",
                S_DESC_SIZE,
                ds,
                "larger than a block",
            ));
        }
        // A resize inode reserves at most one indirect block's worth of GDT blocks.
        if u64::from(self.s_reserved_gdt_blocks) > self.block_size() / 4 {
            return Err(Self::bad(
                dev,
                "s_reserved_gdt_blocks",
                S_RESERVED_GDT_BLOCKS,
                self.s_reserved_gdt_blocks.into(),
                "more than one indirect block addresses",
            ));
        }
        Ok(())
    }
}
