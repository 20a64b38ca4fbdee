"""Screenshot the web chat page after a few lines, in headless chromium (Playwright driving a
chromium already on this machine; nothing is downloaded). Start a server first, e.g.

    promptrec --model small serve --port 8767 &
    python eval/screenshot_web_chat.py --url http://127.0.0.1:8767 --line "/user 1" --out docs/images/web-chat.png
"""

from __future__ import annotations

import argparse
import shutil


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--line", action="append", default=[], help="A chat line to send (repeatable).")
    parser.add_argument("--out", default="web-chat.png")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=700)
    parser.add_argument("--wait-s", type=float, default=300.0, help="Longest wait for each answer.")
    args = parser.parse_args(argv)

    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.url.rstrip("/") + "/")
        expect(page.locator("#status")).not_to_have_text("connecting…")
        for line in args.line or ["/user 1"]:
            page.fill("#line", line)
            page.press("#line", "Enter")
            expect(page.locator("#send")).to_be_disabled()
            expect(page.locator("#send")).to_be_enabled(timeout=args.wait_s * 1000)
        page.screenshot(path=args.out)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
