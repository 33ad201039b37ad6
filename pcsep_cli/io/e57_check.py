"""What an E57 file must look like before libE57Format reads it (no pye57 import here).

The physical header (ASTM E2807: signature, version, file length, XML offset and length, page
size) is checked against the file, and the XML section is read with expat for what would keep
libE57Format busy: its parse time grows with the square of the nesting depth.
"""

from __future__ import annotations

import struct
from pathlib import Path

from pcsep_cli.errors import PointCloudError

__all__ = ["E57_HINT", "check_e57_file"]

E57_HINT = "re-export the scan as E57, e.g. with CloudCompare or the scanner's software"
_PAGE = 1024
_MAX_DEPTH = 64  # scanners' files nest 6-10 levels (root, data3D, scan, points, prototype…)
_HEADER = struct.Struct("<8sIIQQQQ")  # signature, major, minor, length, xml offset/length, page


def check_e57_file(path: Path, size: int) -> None:
    """Refuse a file whose physical header cannot belong to it, or whose XML section would keep
    libE57Format busy for minutes, before that library reads it.

    E57 files are a whole number of 1024-byte pages (1020 bytes of data and a CRC-32C each);
    the 48-byte header gives the file's length and where its XML section lies.

    Args:
        path: the file (its first 8 bytes are known to be ``ASTM-E57``).
        size: its size in bytes.

    Raises:
        PointCloudError: truncated, padded or corrupt header; XML nested too deep or with a
            document type declaration.
    """
    with open(path, "rb") as fh:
        head = fh.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise PointCloudError(
            f"only {size:,} bytes, less than the {_HEADER.size}-byte E57 header: it is truncated",
            path,
            E57_HINT,
        )
    _sig, major, minor, length, xml_offset, xml_length, page = _HEADER.unpack(head)
    if major != 1:
        raise PointCloudError(
            f"E57 version {major}.{minor}; pcsep reads version 1 (ASTM E2807)", path, E57_HINT
        )
    if page != _PAGE:
        raise PointCloudError(
            f"header gives a page size of {page:,} bytes; E57 pages are {_PAGE}: it is corrupt",
            path,
            E57_HINT,
        )
    if length > size:
        raise PointCloudError(
            f"header gives a length of {length:,} bytes, the file holds {size:,}: it is truncated",
            path,
            "copy or export the file again; the transfer did not finish",
        )
    if length < size or size % _PAGE:
        raise PointCloudError(
            f"the file holds {size:,} bytes, its header gives {length:,}: it is corrupt or "
            "has data appended",
            path,
            E57_HINT,
        )
    if xml_offset >= size or xml_length > size:
        raise PointCloudError(
            f"header puts the XML section ({xml_length:,} bytes at byte {xml_offset:,}) past "
            f"the end of the {size:,}-byte file: it is corrupt",
            path,
            E57_HINT,
        )
    _check_xml(path, xml_offset, xml_length)


class _Refused(Exception):
    pass


def _check_xml(path: Path, offset: int, length: int) -> None:
    """Refuse XML that libE57Format would take minutes over: elements nested deeper than
    :data:`_MAX_DEPTH` (its parse time grows with the square of the depth: 100,000 levels, a
    2.4 MB file, took 58 s) or a document type declaration (E57 has none; entities could
    expand). Expat reads the section in C; whatever else is wrong is left to libE57Format.
    """
    from xml.parsers import expat

    start = offset - offset % _PAGE
    with open(path, "rb") as fh:
        fh.seek(start)
        pages = fh.read(offset - start + length + (length // (_PAGE - 4) + 2) * 4)
    logical = b"".join(pages[i : i + _PAGE - 4] for i in range(0, len(pages), _PAGE))
    xml = logical[offset - start : offset - start + length]
    depth = 0

    def open_element(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > _MAX_DEPTH:
            raise _Refused(f"its XML nests elements more than {_MAX_DEPTH} levels deep")

    def close_element(name: str) -> None:
        nonlocal depth
        depth -= 1

    def doctype(*args: object) -> None:
        raise _Refused("its XML has a document type declaration, which E57 never uses")

    parser = expat.ParserCreate()
    parser.StartElementHandler = open_element
    parser.EndElementHandler = close_element
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(xml, True)
    except _Refused as err:
        raise PointCloudError(f"{err}: it is corrupt", path, E57_HINT) from None
    except expat.ExpatError:
        return  # libE57Format says what is wrong
