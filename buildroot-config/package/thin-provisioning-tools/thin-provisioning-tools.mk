################################################################################
#
# thin-provisioning-tools
#
################################################################################

# Buildroot has no package for these. Version 1.x is Rust (one multi-call binary,
# pdata_tools, that answers to the name it is called by), so the cargo infrastructure
# builds it and vendors its crates at download time; 0.9's C++ needs boost and patches
# for musl.
THIN_PROVISIONING_TOOLS_VERSION = 1.1.0
THIN_PROVISIONING_TOOLS_SITE = $(call github,jthornber,thin-provisioning-tools,v$(THIN_PROVISIONING_TOOLS_VERSION))
THIN_PROVISIONING_TOOLS_LICENSE = GPL-3.0
THIN_PROVISIONING_TOOLS_LICENSE_FILES = COPYING

# The names lvm2 and ironclone call, in /usr/sbin where lvm2 looks for them by default
# (lvm.conf's thin_check_executable): thin_check before a thin pool is activated,
# thin_delta for changed-block tracking (src/schedule/thin_delta.rs), cache_check
# before a cached LV is activated; the rest for the rescuer's shell.
THIN_PROVISIONING_TOOLS_LINKS = \
	thin_check thin_delta thin_dump thin_ls thin_repair thin_restore thin_rmap \
	thin_metadata_size thin_trim cache_check cache_dump cache_repair cache_restore

define THIN_PROVISIONING_TOOLS_INSTALL_LINKS
	mkdir -p $(TARGET_DIR)/usr/sbin
	$(foreach t,$(THIN_PROVISIONING_TOOLS_LINKS),
		ln -sf ../bin/pdata_tools $(TARGET_DIR)/usr/sbin/$(t)
	)
endef
THIN_PROVISIONING_TOOLS_POST_INSTALL_TARGET_HOOKS += THIN_PROVISIONING_TOOLS_INSTALL_LINKS

$(eval $(cargo-package))
