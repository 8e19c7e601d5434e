################################################################################
#
# ironclone
#
################################################################################

# Built from the checkout this BR2_EXTERNAL tree lives in. The version is read from
# Cargo.toml so the two never drift.
IRONCLONE_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(BR2_EXTERNAL_IRONCLONE_PATH)/../Cargo.toml | head -n1)
IRONCLONE_SITE = $(BR2_EXTERNAL_IRONCLONE_PATH)/..
IRONCLONE_SITE_METHOD = local
IRONCLONE_LICENSE = MIT OR Apache-2.0
# Host build products and the Buildroot tree itself are not sources.
IRONCLONE_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude target --exclude build --exclude out --exclude .git

# The cargo infrastructure vendors crates in its download post-process, which the `local`
# site method skips. Vendor here instead (needs the internet once, like any Buildroot
# download), so the infrastructure's `cargo build --offline --locked` finds every crate.
define IRONCLONE_VENDOR_CRATES
	cd $(@D) && $(PKG_CARGO_ENV) cargo vendor --locked --versioned-dirs VENDOR >/dev/null
	mkdir -p $(@D)/.cargo
	printf '[source.crates-io]\nreplace-with = "vendored-sources"\n\n[source.vendored-sources]\ndirectory = "VENDOR"\n' \
		>$(@D)/.cargo/config.toml
endef
IRONCLONE_PRE_BUILD_HOOKS += IRONCLONE_VENDOR_CRATES

$(eval $(cargo-package))
