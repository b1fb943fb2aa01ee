"""One uploaded file made into an `Attachment`: an image downscaled and re-encoded without its
metadata, or a document read to its whole text; anything else is refused in words that name
the file, say what is wrong and what to do."""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile

import charset_normalizer
import docx
import pillow_heif
import pypdf
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from PIL import Image, ImageOps
from pypdf.errors import PyPdfError

from core.failures import UserFacingError
from core.history.model import (
    MAX_ATTACHMENT_NAME_LENGTH,
    MAX_DOCUMENT_CHARS,
    MAX_IMAGE_BYTES,
    Attachment,
)

pillow_heif.register_heif_opener()  # Pillow opens HEIC/HEIF (iPhone photos) from here on


class AttachmentRefused(UserFacingError):
    """A file that cannot be attached; the text names it."""


IMAGE_TYPES = ("png", "jpg", "jpeg", "webp", "gif", "heic", "heif")
_DOCUMENT_MIMES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "txt": "text/plain", "md": "text/markdown", "markdown": "text/markdown",
    "csv": "text/csv", "tsv": "text/tab-separated-values", "json": "application/json",
    "jsonl": "application/jsonl", "html": "text/html", "htm": "text/html", "css": "text/css",
    "xml": "application/xml", "yaml": "application/yaml", "yml": "application/yaml",
}
_CODE_TYPES = (
    "log", "rst", "tex", "toml", "ini", "cfg", "conf", "sql", "py", "ipynb", "js", "mjs", "ts",
    "jsx", "tsx", "java", "kt", "scala", "c", "h", "cpp", "hpp", "cc", "cs", "go", "rs", "rb",
    "php", "swift", "m", "r", "jl", "lua", "pl", "sh", "bash", "zsh", "ps1", "bat", "scss",
    "vue", "svelte", "dart", "hs", "ex", "exs", "erl", "clj", "el", "vim", "diff", "patch",
)
TEXT_TYPES = tuple(t for t in _DOCUMENT_MIMES if t not in ("pdf", "docx")) + _CODE_TYPES
# For st.chat_input(file_type=...): keep it constant, a change resets the widget.
ACCEPTED_TYPES = [*IMAGE_TYPES, "pdf", "docx", *TEXT_TYPES]
MAX_UPLOAD_MB = 50  # a phone photo of 10-25 MB passes
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024  # as Streamlit counts its max_upload_size

# Images as sent: a long side a vision model takes without shrinking it again, and bytes.
MAX_IMAGE_SIDE = 1568
MAX_IMAGE_PART = min(500_000, MAX_IMAGE_BYTES)
# Pixels an image may decode to: a 50 MP phone photo passes, a decompression bomb does not.
# Below Pillow's own bound (89 MP warns, twice that raises), so ours is met first.
MAX_IMAGE_PIXELS = 64_000_000
_JPEG_QUALITIES = (85, 75, 65, 55, 45)
# Pillow formats opened: the decoders of the accepted types, and no other.
_PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "HEIF")
# What a damaged image makes Pillow's decoders raise.
_UNDECODABLE = (OSError, SyntaxError, ValueError, EOFError, IndexError)
# What a damaged PDF or DOCX makes their readers raise besides their own error classes (lxml's
# parse errors under python-docx are SyntaxErrors).
_UNREADABLE = (ValueError, KeyError, IndexError, TypeError, AttributeError, EOFError,
               SyntaxError, RecursionError, zipfile.BadZipFile)
MAX_DOCX_UNPACKED = 256 * 1024 * 1024  # bytes a DOCX's parts may unpack to (a zip bomb's bound)


def read_upload(name: str, data: bytes, mime: str = "") -> Attachment:
    """The attachment for one uploaded file; `mime` is what the browser said (a hint only:
    the type is read from the bytes, then from the name's extension)."""
    name = clean_name(name)
    if not data:
        raise AttachmentRefused(f"{name} is empty (0 bytes). Attach the file again, or check "
                                "that it was saved.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise AttachmentRefused(f"{name} is {human_size(len(data))}; files of up to "
                                f"{MAX_UPLOAD_MB} MB can be attached. Attach a smaller copy, "
                                "or only the part you need.")
    kind = _sniffed_type(data) or extension(name)
    if kind in IMAGE_TYPES:
        return _image(name, data)
    if kind == "pdf":
        return _document(name, data, _pdf_text(name, data), "pdf")
    if kind == "docx":
        return _document(name, data, _docx_text(name, data), "docx")
    if kind in TEXT_TYPES or (mime.startswith("text/") and kind not in ACCEPTED_TYPES):
        return _document(name, data, _plain_text(name, data), kind)
    raise AttachmentRefused(f"{name} is a kind of file that cannot be attached. Attach an "
                            "image (PNG, JPEG, WebP, GIF, HEIC) or a document (PDF, DOCX, "
                            "text, Markdown, CSV, JSON or code).")


# ---------------------------------------------------------------- names and types


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean_name(name: str) -> str:
    """The file's own name: no folders, no control or direction characters, bounded (the
    extension kept)."""
    name = _CONTROLS.sub("", re.split(r"[/\\]", name)[-1]).strip() or "file"
    if len(name) <= MAX_ATTACHMENT_NAME_LENGTH:
        return name
    stem, dot, ext = name.rpartition(".")
    tail = f".{ext}" if dot and stem and len(ext) < 20 else ""
    return name[:MAX_ATTACHMENT_NAME_LENGTH - len(tail)].rstrip() + tail


def extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""


def _sniffed_type(data: bytes) -> str:
    """The type the bytes say, whatever the name says; "" when they do not say."""
    head = data[:32]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"heim", b"heis", b"hevc",
                                               b"hevx", b"mif1", b"msf1", b"heif"):
        return "heic"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04") and _holds(data, "word/document.xml"):
        return "docx"
    return ""


def _holds(data: bytes, member: str) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return member in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


# ---------------------------------------------------------------- images


def _image(name: str, data: bytes) -> Attachment:
    picture = _decoded(name, data)
    picture.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    mime, encoded, (width, height) = _encoded(picture)
    return Attachment(name=name, kind="image", mime=mime, data=encoded, size=len(data),
                      width=width, height=height)


def _decoded(name: str, data: bytes) -> Image.Image:
    """The whole first frame, turned upright, as RGB or RGBA, with no metadata."""
    damaged = (f"{name} could not be read as an image: it is damaged, cut short, or not an "
               "image. Open it in a photo app, save or export it again, and attach the copy.")
    try:
        with Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS) as opened:
            if opened.width * opened.height > MAX_IMAGE_PIXELS:
                raise AttachmentRefused(_too_many_pixels(name, opened.width * opened.height))
            # A JPEG decodes at 1/2, 1/4 or 1/8 scale when still at least the size sent.
            opened.draft("RGB", _draft_size(opened.size))
            opened.load()  # all of it: a truncated file fails here rather than half grey
            upright = ImageOps.exif_transpose(opened)
            clear = upright.convert("RGBA" if _has_alpha(upright) else "RGB")
    except Image.DecompressionBombError:
        raise AttachmentRefused(_too_many_pixels(name)) from None
    except _UNDECODABLE:
        raise AttachmentRefused(damaged) from None
    clear.info.clear()  # EXIF, XMP, ICC profile, comments: none is written back
    return clear


def _too_many_pixels(name: str, pixels: int = 0) -> str:
    size = f" ({pixels / 1e6:,.0f} megapixels)" if pixels else ""
    return (f"{name} is too large an image{size}; images of up to "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels can be attached. Attach a smaller "
            "copy of it.")


def _draft_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    scale = MAX_IMAGE_SIDE / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _has_alpha(picture: Image.Image) -> bool:
    return picture.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in picture.info


def _encoded(picture: Image.Image) -> tuple[str, bytes, tuple[int, int]]:
    """PNG while the transparency is real and the PNG small; otherwise JPEG, over white. With
    the size sent."""
    if picture.mode == "RGBA":
        if picture.getchannel("A").getextrema()[0] < 255:
            png = _saved(picture, "PNG")
            if len(png) <= MAX_IMAGE_PART:
                return "image/png", png, picture.size
        flat = Image.new("RGB", picture.size, "white")
        flat.paste(picture, mask=picture.getchannel("A"))
        picture = flat
    return "image/jpeg", *_small_jpeg(picture)


def _small_jpeg(picture: Image.Image) -> tuple[bytes, tuple[int, int]]:
    """Quality stepped down, then the size, until it fits in a part (noise may need both)."""
    while True:
        for quality in _JPEG_QUALITIES:
            encoded = _saved(picture, "JPEG", quality=quality)
            if len(encoded) <= MAX_IMAGE_PART:
                return encoded, picture.size
        picture = picture.resize((max(1, picture.width * 3 // 4),
                                  max(1, picture.height * 3 // 4)), Image.Resampling.LANCZOS)


def _saved(picture: Image.Image, format: str, **options) -> bytes:
    out = io.BytesIO()
    picture.save(out, format, **options)
    return out.getvalue()


# ---------------------------------------------------------------- documents


def _document(name: str, data: bytes, text: str, kind: str) -> Attachment:
    if len(text) > MAX_DOCUMENT_CHARS:
        raise AttachmentRefused(f"{name} holds {len(text):,} characters of text; documents of "
                                f"up to {MAX_DOCUMENT_CHARS:,} characters can be attached, and "
                                "a document is never cut. Attach only the part you need, or "
                                "split it into smaller files.")
    return Attachment(name=name, kind="document", text=text, size=len(data),
                      mime=_DOCUMENT_MIMES.get(kind, "text/plain"))


def _damaged(name: str, what: str) -> AttachmentRefused:
    return AttachmentRefused(f"{name} could not be read: the {what} is damaged or cut short. "
                             "Open it, save it again (or download it again), and attach the "
                             "new copy.")


def _pdf_text(name: str, data: bytes) -> str:
    if b"%%EOF" not in data[-1024:]:  # a PDF ends so; pypdf would read what it finds
        raise _damaged(name, "PDF")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs lock with no password
            raise AttachmentRefused(
                f"{name} is protected by a password. Open it with its password, save a copy "
                "without one (for example Print, then Save as PDF), and attach that copy.")
        pages = [page.extract_text() for page in reader.pages]
    except (PyPdfError, *_UNREADABLE):
        raise _damaged(name, "PDF") from None
    if not any(page.strip() for page in pages):
        raise AttachmentRefused(
            f"{name} has no text to read: it looks scanned (its pages are pictures, with no "
            "text layer). Run it through text recognition (OCR) and attach the result, or "
            "attach the pages as images.")
    return "\n\n".join(pages)


def _docx_text(name: str, data: bytes) -> str:
    """Paragraphs and tables in the order the document has them; a table row by row."""
    if not _unpacks_small(data):
        raise _damaged(name, "Word document")
    try:
        return "\n".join(_blocks_text(docx.Document(io.BytesIO(data))))
    except (PackageNotFoundError, *_UNREADABLE):
        raise _damaged(name, "Word document") from None


def _unpacks_small(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(member.file_size for member in archive.infolist()) <= MAX_DOCX_UNPACKED
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def _blocks_text(container) -> list[str]:
    lines = []
    for block in container.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                lines.append(" | ".join("\n".join(_blocks_text(cell)) for cell in row.cells))
        else:
            lines.append(block.text)
    return lines


# Control characters no text file holds (tab, line breaks, form feed and escape it may).
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
         (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def _plain_text(name: str, data: bytes) -> str:
    text = _decoded_text(data)
    if text is None or _looks_binary(text):
        raise AttachmentRefused(
            f"{name} does not look like text: its bytes are not in any text encoding. If it "
            "is a document from another program, export it as PDF, DOCX or plain text and "
            "attach that.")
    return text


def _decoded_text(data: bytes) -> str | None:
    """UTF-8 and files marked with a byte order mark as they say; else the encoding that
    reads most like text, or None."""
    for mark, encoding in _BOMS:
        if data.startswith(mark):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _legacy_text(data)


# Legacy encodings by how common their files are: when the detector finds several that read
# the bytes about equally well (short Western text often reads as Baltic or Central European
# too), the commonest wins.
_COMMON_ENCODINGS = ("cp1252", "cp1251", "cp932", "gb18030", "big5", "cp949", "cp1250",
                     "cp1253")
_EQUALLY_WELL = 0.03  # the detector's "chaos" (0: reads cleanly, 1: noise)


def _legacy_text(data: bytes) -> str | None:
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    near = {m.encoding: m for m in matches if m.chaos <= best.chaos + _EQUALLY_WELL}
    chosen = next((near[e] for e in _COMMON_ENCODINGS if e in near), best)
    return str(chosen)


def _looks_binary(text: str) -> bool:
    controls = len(_BINARY.findall(text))
    return "\x00" in text or controls > len(text) // 1000 or _unassigned(text)


def _unassigned(text: str) -> bool:
    """Many characters no script has: bytes read in an encoding they are not in."""
    sample = text[:20_000]
    odd = sum(unicodedata.category(ch) in ("Cn", "Co", "Cs") for ch in sample)
    return odd > len(sample) // 100


# ---------------------------------------------------------------- words for a chip


_KIND_LABELS = {"image/jpeg": "JPEG", "image/png": "PNG", "application/pdf": "PDF",
                _DOCUMENT_MIMES["docx"]: "Word", "text/markdown": "Markdown", "text/csv": "CSV",
                "text/tab-separated-values": "TSV", "application/json": "JSON"}


def describe_kind(attachment: Attachment) -> str:
    """A chip's words, such as "PDF · 3.4 MB" or "JPEG · 1568×1176 · 6.1 MB"."""
    label = _KIND_LABELS.get(attachment.mime, "Text" if attachment.kind == "document"
                             else "Image")
    if attachment.kind == "image":
        return f"{label} · {attachment.width}×{attachment.height} · {human_size(attachment.size)}"
    return f"{label} · {human_size(attachment.size)}"


def human_size(size: int) -> str:
    """Bytes as a person reads them: 512 B, 12 KB, 3.4 MB (1 MB = 1,048,576 bytes)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"
