"""File name conventions, plate format detection and channel names from plate metadata."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platestream.config import ConfigError
from platestream.layering._filenames import (
    FileNameError,
    ImageXpressParser,
    OperaPhenixParser,
    RegexParser,
    UnrecognizedNameError,
    parse_name,
)
from platestream.layering._plate_format import (
    PlateMetadataError,
    channel_names_from_htd,
    channel_names_from_index_xml,
    detect_format,
)

GUID = "C4EC5CAE-3F4E-4B3A-9B0A-7A0D8E4E1D3F"
DIGIT_GUID = "46C9B2CD-0BB3-4B8A-9187-2805F4C90506"  # starts with digits, like real ones do


@pytest.mark.parametrize(
    ("path", "components", "thumbnail"),
    [
        ("Plate1_A01_s1_w1.tif", {"well": "A01", "site": 1, "channel": 1}, False),
        ("A01_s10_w2.tif", {"well": "A01", "site": 10, "channel": 2}, False),
        ("2015-07-31 val screen_B02_s3_w2.TIF", {"well": "B02", "site": 3, "channel": 2}, False),
        (f"MIP-2P_C05_s1_w1{DIGIT_GUID}.tif", {"well": "C05", "site": 1, "channel": 1}, False),
        (f"run_C05_s2_w2{DIGIT_GUID}.tif", {"well": "C05", "site": 2, "channel": 2}, False),
        (f"run_D07_s1_w12{GUID}.tiff", {"well": "D07", "site": 1, "channel": 12}, False),
        (
            f"Projection-Mix_E07_s1_w1_thumb{GUID}.tif",
            {"well": "E07", "site": 1, "channel": 1},
            True,
        ),
        (
            "plate_H12_s4_w3_z7_t2.Tiff",
            {"well": "H12", "site": 4, "channel": 3, "z_index": 7, "timepoint": 2},
            False,
        ),
        ("plate_C12.tif", {"well": "C12"}, False),
        ("plate_P24_w4.tif", {"well": "P24", "channel": 4}, False),
        ("1536_AF48_s2_w1.tif", {"well": "AF48", "site": 2, "channel": 1}, False),
        (
            "TimePoint_3/plate_A02_s1_w1.tif",
            {"well": "A02", "site": 1, "channel": 1, "timepoint": 3},
            False,
        ),
        (
            "2023-02-21/1334/ZStep_4/x_B01_s2_w2.tif",
            {"well": "B01", "site": 2, "channel": 2, "z_index": 4},
            False,
        ),
        (
            "Timepoint_2\\ZStep_1\\x_B01_s1_w1.TIF",
            {"well": "B01", "site": 1, "channel": 1, "timepoint": 2, "z_index": 1},
            False,
        ),
    ],
)
def test_imagexpress_names(path: str, components: dict, thumbnail: bool) -> None:
    parsed = ImageXpressParser().parse(path)
    assert parsed is not None
    assert dict(parsed.components) == components
    assert parsed.thumbnail is thumbnail and parsed.format == "imagexpress"


@pytest.mark.parametrize(
    ("name", "well", "prefix"),
    [
        (f"Screen1_c07_s2_w3{GUID}.tif", "C07", "Screen1"),  # as MetaXpress writes them
        ("x_af48_s1_w2.TIF", "AF48", "x"),
        ("plate_a01_s1_w1.tif", "A01", "plate"),
        ("exp_ab12_A01_s1_w1.tif", "A01", "exp_ab12"),  # a capital well wins over the prefix
    ],
)
def test_imagexpress_reads_lower_case_wells_when_no_capital_one_is_there(
    name: str, well: str, prefix: str
) -> None:
    parsed = parse_name(name)
    assert parsed.components["well"] == well and parsed.extra["prefix"] == prefix


def test_imagexpress_keeps_prefix_and_guid_and_rejects_contradicting_folders() -> None:
    parsed = parse_name(f"val screen_B02_s1_w1_thumb{GUID}.tif")
    assert dict(parsed.extra) == {"prefix": "val screen", "guid": GUID}
    with pytest.raises(UnrecognizedNameError, match=r"TimePoint_2.*contradicts.*timepoint 3"):
        parse_name("TimePoint_2/plate_A01_s1_w1_t3.tif")


@pytest.mark.parametrize(
    ("path", "components", "extra"),
    [
        (
            "r01c01f01p01-ch1sk1fk1fl1.tiff",
            {"well": "A01", "site": 1, "z_index": 1, "channel": 1, "timepoint": 1},
            {"fk": "1", "fl": "1"},
        ),
        (
            "Images/r16c24f09p03-ch4sk2fk1fl1.TIFF",
            {"well": "P24", "site": 9, "z_index": 3, "channel": 4, "timepoint": 2},
            {"fk": "1", "fl": "1"},
        ),
        ("r02c03f144p05-ch3.tif", {"well": "B03", "site": 144, "z_index": 5, "channel": 3}, {}),
    ],
)
def test_opera_phenix_names(path: str, components: dict, extra: dict) -> None:
    parsed = OperaPhenixParser().parse(path)
    assert parsed is not None
    assert dict(parsed.components) == components and dict(parsed.extra) == extra


@pytest.mark.parametrize(
    "path",
    [
        "notes.txt",
        "plate_s1_w1.tif",  # no well at all
        "r00c01f01p01-ch1sk1fk1fl1.tiff",
        "A01_s1_w1.png",
        "A1_s1.tif",
    ],
)
def test_names_no_convention_reads_are_errors_naming_the_file_and_conventions(path: str) -> None:
    with pytest.raises(UnrecognizedNameError) as error:
        parse_name(path)
    message = str(error.value)
    assert repr(path) in message and "imagexpress" in message and "opera_phenix" in message


names = st.text(alphabet="abcXYZ 019-_.", min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.one_of(st.none(), names),
    row=st.sampled_from(["A", "H", "P", "AA", "AF"]),
    column=st.integers(1, 48),
    site=st.one_of(st.none(), st.integers(1, 400)),
    channel=st.one_of(st.none(), st.integers(1, 20)),
    guid=st.booleans(),
    thumb=st.booleans(),
    ext=st.sampled_from([".tif", ".TIF", ".tiff", ".Tiff"]),
)
def test_imagexpress_reads_back_what_was_written(
    prefix: str | None,
    row: str,
    column: int,
    site: int | None,
    channel: int | None,
    guid: bool,
    thumb: bool,
    ext: str,
) -> None:
    name = "" if prefix is None else f"{prefix}_"
    name += f"{row}{column:02d}"
    name += "" if site is None else f"_s{site}"
    name += "" if channel is None else f"_w{channel}"
    name += ("_thumb" if thumb else "") + (DIGIT_GUID if guid else "") + ext
    parsed = ImageXpressParser().parse(name)
    assert parsed is not None, name
    expected = {"well": f"{row}{column:02d}", "site": site, "channel": channel}
    assert dict(parsed.components) == {k: v for k, v in expected.items() if v is not None}
    assert parsed.thumbnail is thumb


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 32),
    st.integers(1, 48),
    st.integers(1, 999),
    st.integers(1, 99),
    st.integers(1, 9),
    st.integers(1, 99),
)
def test_opera_phenix_reads_back_what_was_written(
    row: int, col: int, field: int, plane: int, channel: int, sk: int
) -> None:
    parsed = parse_name(
        f"r{row:02d}c{col:02d}f{field:02d}p{plane:02d}-ch{channel}sk{sk}fk1fl1.tiff"
    )
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    well = (letters[row - 1] if row <= 26 else "A" + letters[row - 27]) + f"{col:02d}"
    assert dict(parsed.components) == {
        "well": well,
        "site": field,
        "z_index": plane,
        "channel": channel,
        "timepoint": sk,
    }


def test_a_regex_parser_with_named_groups() -> None:
    parser = RegexParser(r"(?P<well>[A-P]\d{1,2})_f(?P<site>\d+)_(?P<channel>[A-Za-z0-9]+)\.tif")
    parsed = parser.parse("scans/B3_f12_GFP.tif")
    assert parsed is not None and dict(parsed.components) == {
        "well": "B03",
        "channel": "GFP",
        "site": 12,
    }
    assert parser.parse("B3_f12_GFP.tiff") is None
    rows = RegexParser(r"(?P<row>\d+)-(?P<column>\d+)-(?P<timepoint>\d+)\.tif", name="lab")
    parsed = rows.parse("3-7-0012.tif")
    assert parsed is not None and dict(parsed.components) == {"well": "C07", "timepoint": 12}
    path = RegexParser(r"plate/(?P<well>[A-H]\d\d)/(?P<z_index>\d+)\.tif", match_path=True)
    assert path.parse("plate/A01/3.tif") is not None and path.parse("A01/3.tif") is None


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"(?P<wel>A\d+)\.tif", "not components"),
        (r"(?P<row>\d+)\.tif", "row and column"),
        (r"(?P<well>A\d+)(?P<row>\d)(?P<column>\d)\.tif", "row and column"),
        (r"(?P<well>[A-", "pattern"),
    ],
)
def test_a_bad_regex_parser_is_a_config_error(pattern: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        RegexParser(pattern)


IX_PLATE = [
    "plate.HTD",
    "TimePoint_1/plate_A01_s1_w1.tif",
    f"TimePoint_1/plate_A01_s1_w1_thumb{GUID}.tif",
    "TimePoint_1/plate_A01_s1_w2.tif",
    "TimePoint_1/plate_B01_s1_w1.tif",
    "notes.txt",
]


def test_detecting_an_imagexpress_plate_sets_thumbnails_aside() -> None:
    files = detect_format(IX_PLATE)
    assert files.format == "imagexpress"
    assert [p.path for p in files.images] == [
        "TimePoint_1/plate_A01_s1_w1.tif",
        "TimePoint_1/plate_A01_s1_w2.tif",
        "TimePoint_1/plate_B01_s1_w1.tif",
    ]
    assert len(files.thumbnails) == 1


def test_detecting_an_opera_plate_and_errors_for_bad_folders() -> None:
    opera = ["Images/Index.idx.xml", "Images/r01c01f01p01-ch1sk1fk1fl1.tiff"]
    assert detect_format(opera).format == "opera_phenix"
    with pytest.raises(FileNameError, match="mixes conventions"):
        detect_format(["a_A01_s1_w1.tif", "r01c01f01p01-ch1sk1fk1fl1.tiff"])
    # A name no convention reads is left out, with why; it does not stop the plate.
    stray = detect_format([*IX_PLATE, "odd name.tif"])
    assert stray.format == "imagexpress" and len(stray.images) == len(
        detect_format(IX_PLATE).images
    )
    ((path, why),) = stray.unread
    assert path == "odd name.tif" and "odd name.tif" in why
    with pytest.raises(UnrecognizedNameError, match=r"'odd name\.tif'"):
        detect_format(["odd name.tif"])  # but a plate of nothing readable is an error
    with pytest.raises(FileNameError, match=r"no \.tif"):
        detect_format(["plate.HTD"])


def test_when_two_conventions_read_every_name_metadata_decides_or_it_is_an_error() -> None:
    lab = RegexParser(r".*_(?P<well>[A-P]\d\d)_s(?P<site>\d+)\.tif", name="lab")
    names = ["x_A01_s1.tif", "x_A02_s1.tif"]
    with pytest.raises(FileNameError, match="several conventions"):
        detect_format(names, [ImageXpressParser(), lab])
    assert detect_format([*names, "x.HTD"], [ImageXpressParser(), lab]).format == "imagexpress"


HTD = """\
"HTSInfoFile", Version 1.0
"Description", "384 well, 2 sites"
"TimePoints", 1
"XWells", 24
"YWells", 16
"Sites", TRUE
"XSites", 2
"YSites", 1
"Waves", TRUE
"NWavelengths", 3
"WaveName1", "DAPI"
"WaveName2", "FITC"
"WaveName3", "Texas Red, long pass"
"WaveCollect1", 1
"EndFile"
"""


def test_channel_names_from_an_htd() -> None:
    assert channel_names_from_htd(HTD) == {1: "DAPI", 2: "FITC", 3: "Texas Red, long pass"}
    twice = '"WaveName1", "DAPI"\n"WaveName2", "DAPI"\n'
    assert channel_names_from_htd(twice) == {1: "DAPI-1", 2: "DAPI-2"}
    assert channel_names_from_htd('"Waves", FALSE\n') == {}


INDEX_V7 = """<?xml version="1.0" encoding="utf-8"?>
<EvaluationInputData Version="2" xmlns="43B2A954-E3C3-47E1-B392-6635266B0DD3/HarmonyV7">
  <Plates><Plate><PlateID>P7</PlateID><Well id="0101" /></Plate></Plates>
  <Maps>
    <Map><Entry ChannelID="1"><FlatfieldProfile>{}</FlatfieldProfile></Entry></Map>
    <Map>
      <Entry ChannelID="1"><ChannelName>Hoechst 33342</ChannelName></Entry>
      <Entry ChannelID="2"><ChannelName>Alexa 488</ChannelName></Entry>
    </Map>
  </Maps>
</EvaluationInputData>
"""
INDEX_V5 = """<?xml version="1.0" encoding="utf-8"?>
<EvaluationInputData xmlns="http://www.perkinelmer.com/PEHH/HarmonyV5">
  <Images>
    <Image Version="1"><id>0101K1F1P1R1</id>
      <ChannelID>1</ChannelID><ChannelName>DAPI</ChannelName></Image>
    <Image Version="1"><id>0101K1F1P1R2</id>
      <ChannelID>2</ChannelID><ChannelName>Cy5</ChannelName></Image>
  </Images>
</EvaluationInputData>
"""


def test_channel_names_from_index_xml_of_old_and_new_harmony() -> None:
    assert channel_names_from_index_xml(INDEX_V7) == {1: "Hoechst 33342", 2: "Alexa 488"}
    assert channel_names_from_index_xml(INDEX_V5) == {1: "DAPI", 2: "Cy5"}
    with pytest.raises(PlateMetadataError, match="not well-formed"):
        channel_names_from_index_xml("<EvaluationInputData><Maps>")


def test_channel_numbers_become_names() -> None:
    parsed = parse_name("plate_A01_s1_w2.tif").with_channel_names({1: "DAPI", 2: "FITC"})
    assert parsed.components["channel"] == "FITC"
    assert (
        parse_name("plate_A01_s1.tif").with_channel_names({1: "DAPI"}).components.get("channel")
        is None
    )
