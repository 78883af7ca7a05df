"""API domains per provider region (../shared/PROVIDERS.md sections 1.2 and 6.1)."""

TENCENT_REGIONS: dict[str, tuple[str, str]] = {
    # key: (label, primary domain)
    "china": ("China", "console.tim.qq.com"),
    "singapore": ("Singapore", "adminapisgp.im.qcloud.com"),
    "seoul": ("Seoul", "adminapikr.im.qcloud.com"),
    "frankfurt": ("Frankfurt", "adminapiger.im.qcloud.com"),
    "silicon-valley": ("Silicon Valley", "adminapiusa.im.qcloud.com"),
    "jakarta": ("Jakarta", "adminapiidn.im.qcloud.com"),
}

ZEGO_REGIONS: dict[str, tuple[str, str]] = {
    "global": ("Global (nearest)", "rtc-api.zego.im"),
    "sha": ("Shanghai", "rtc-api-sha.zego.im"),
    "hkg": ("Hong Kong", "rtc-api-hkg.zego.im"),
    "fra": ("Frankfurt", "rtc-api-fra.zego.im"),
    "lax": ("Los Angeles", "rtc-api-lax.zego.im"),
    "bom": ("Mumbai", "rtc-api-bom.zego.im"),
    "sgp": ("Singapore", "rtc-api-sgp.zego.im"),
}

REGIONS: dict[str, dict[str, tuple[str, str]]] = {
    "tencent": TENCENT_REGIONS,
    "zego": ZEGO_REGIONS,
}


def api_domain(provider: str, region: str) -> str:
    return REGIONS[provider][region][1]
