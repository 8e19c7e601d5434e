################################################################################
#
# hivex
#
################################################################################

# Buildroot has no hivex package; the restore calls hivexsh (bootfix/bcd.rs), so this
# tree builds the C library and its tools, without the OCaml/Perl/Python/Ruby bindings.
HIVEX_VERSION = 1.3.23
HIVEX_SITE = https://download.libguestfs.org/hivex
HIVEX_LICENSE = LGPL-2.1 (library), GPL-2.0+ (tools)
HIVEX_LICENSE_FILES = COPYING COPYING.LIB
HIVEX_DEPENDENCIES = host-pkgconf libxml2
HIVEX_CONF_OPTS = \
	--disable-ocaml --disable-perl --disable-python --disable-ruby \
	--without-readline --disable-nls

$(eval $(autotools-package))
