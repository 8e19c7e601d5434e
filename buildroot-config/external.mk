include $(sort $(wildcard $(BR2_EXTERNAL_IRONCLONE_PATH)/package/*/*.mk))
