# The path mmkd was first published with (`python tools/train.py
# configs/vkd_retinanet_r50_r18_coco.py`, `mmkd::vkd_retinanet_r50_r18_coco.py`),
# kept valid: the config itself lives in configs/vkd/ and is inherited whole,
# so there is one copy to keep. Work dir: work_dirs/vkd_retinanet_r50_r18_coco.
_base_ = ['./vkd/vkd_retinanet_r50_r18_coco.py']
