"""Screenshot of the dashboard (``genrl app``) for the README, taken with the system's headless Chromium.

    MUJOCO_GL=egl .venv/bin/python scripts/app_screenshot.py walker runs --prompt "lying on the back" \
        --out docs/app.png

Starts the app on 127.0.0.1, types the prompt, waits for the decoded video and its nearest clips, then saves the
page as a palette PNG. Needs ``chromium``, ``chromium-driver`` (apt) and ``selenium`` (the test extra).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="*", default=["walker"], help="as `genrl app RUN ...`")
    p.add_argument("--prompt", default="lying on the back")
    p.add_argument("--out", default="docs/app.png")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=960)
    p.add_argument("--colors", type=int, default=128, help="palette size of the PNG (smaller file)")
    args = p.parse_args()

    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from genrl.app.dashboard import launch
    from genrl.app.dashboard_core import Dashboard

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app, url = launch(Dashboard(args.runs), port=port, block=False, quiet=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                f"--window-size={args.width},{args.height}", "--autoplay-policy=no-user-gesture-required",
                "--mute-audio", "--hide-scrollbars"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=opts)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": args.width, "height": args.height,
                                                                       "deviceScaleFactor": 1, "mobile": False})
        driver.get(url)
        wait = WebDriverWait(driver, 120, poll_frequency=0.25)
        box = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#prompt textarea, #prompt input"))[0]
        box.send_keys(args.prompt)
        driver.find_element(By.ID, "decode").click()
        loaded = ("const v = document.querySelector(arguments[0]); "
                  "return !!v && v.readyState >= 2 && v.videoWidth > 0;")
        for css in ("#decoded video", "#nearest video"):
            wait.until(lambda d: d.execute_script(loaded, css))
        time.sleep(1.5)  # a few frames into the loop
        driver.save_screenshot(args.out)
    finally:
        driver.quit()
        app.close()
    image = Image.open(args.out).convert("RGB")
    image.quantize(colors=args.colors, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out} ({image.size[0]}x{image.size[1]})")


if __name__ == "__main__":
    main()
