"""The cross-silo network from real event sequences: measures, wave-by-wave
change, the exports (GraphML and GEXF parse back with networkx, the pictures
are a valid SVG and PNG), and a committee's aggregated view."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from datetime import date

import networkx as nx
import pytest
from PIL import Image

from tests.support.insights import T0, Scenario, insights_env  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def world(insights_env):  # noqa: F811
    sc = Scenario()
    sc.programme("Digital reverse mentoring")
    sc.wave("FR", starts=date(2026, 1, 5))
    sc.wave("DE", starts=date(2026, 2, 2))

    def mentee(country, entity, function):
        return sc.enrol(country, "mentee", entity=entity, business_function=function, generation_band="gen_x")

    def mentor(country, entity, function):
        return sc.enrol(country, "mentor", entity=entity, business_function=function, generation_band="gen_z")

    same_entity = sc.pair(mentee("FR", "Acme France", "finance"), mentor("FR", "Acme France", "it"))
    crossing = sc.pair(mentee("FR", "Acme France", "finance"), mentor("DE", "Acme Germany", "marketing"))
    german = sc.pair(mentee("DE", "Acme Germany", "marketing"), mentor("DE", "Acme Germany", "marketing"))
    mentee("FR", "Acme France", "legal")  # enrolled, never paired
    for pair in (same_entity, crossing, crossing, german):
        sc.held(pair, T0)
    await insights_env.pipeline.feed(sc)
    return sc


async def network(env, sc, fmt: str = "json", *roles: str, countries=()):
    response = await env.api.get(f"/v1/programmes/{sc.programme_id}/network", sc.organisation, *roles,
                                 countries=countries, format=fmt)
    assert response.status_code == 200, response.text
    return response


async def test_measures_and_wave_by_wave_change(insights_env, world) -> None:  # noqa: F811
    body = (await network(insights_env, world)).json()
    m = body["measures"]
    assert m["pairs"] == 3
    assert m["crossing_share"] == {"entity": 0.3333, "function": 0.6667, "country": 0.3333, "generation": 1.0}
    assert m["silos"]["function"] == {"unreached": ["legal"], "closed": []}
    assert m["silos"]["entity"] == {"unreached": [], "closed": []}
    assert {"dimension": "country", "between": ["DE", "FR"], "pairs": 1} in m["bridges"]
    edge = next(e for e in body["links"] if {e["source"], e["target"]} == {"entity:Acme France", "entity:Acme Germany"})
    assert edge["pairs"] == 1 and edge["sessions"] == 2 and edge["crossing"] is True

    waves = body["waves"]
    assert [w["wave_name"] for w in waves] == ["FR wave", "DE wave"]
    assert [w["cumulative_pairs"] for w in waves] == [2, 3]
    assert waves[0]["crossing_share"]["entity"] == 0.5
    assert waves[1]["change"]["crossing_share"]["entity"] == pytest.approx(0.3333 - 0.5, abs=1e-4)
    assert waves[1]["change"]["groups_reached"]["country"] == 0


async def test_graphml_and_gexf_parse_back_with_networkx(insights_env, world) -> None:  # noqa: F811
    nodes = {n["id"] for n in (await network(insights_env, world)).json()["nodes"]}
    graphml = await network(insights_env, world, "graphml")
    assert graphml.headers["content-type"] == "application/graphml+xml"
    g = nx.read_graphml(io.BytesIO(graphml.content))
    assert set(g.nodes) == nodes
    assert g.edges["country:DE", "country:FR"]["pairs"] == 1
    gexf = nx.read_gexf(io.BytesIO((await network(insights_env, world, "gexf")).content))
    assert set(gexf.nodes) == nodes and gexf.number_of_edges() == g.number_of_edges()


async def test_pictures_are_a_valid_svg_and_png(insights_env, world) -> None:  # noqa: F811
    svg = await network(insights_env, world, "svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert ET.fromstring(svg.content).tag == "{http://www.w3.org/2000/svg}svg"
    png = await network(insights_env, world, "png")
    assert png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    image.verify()
    assert image.format == "PNG" and image.size[0] > 200
    bad = await insights_env.api.get(f"/v1/programmes/{world.programme_id}/network", world.organisation, format="pdf")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.format"


async def test_a_committee_sees_other_countries_aggregated(insights_env, world) -> None:  # noqa: F811
    body = (await network(insights_env, world, "json", "regional_committee", countries=("FR",))).json()
    nodes = {n["id"] for n in body["nodes"]}
    assert "country:(other countries)" in nodes and "entity:(other countries)" in nodes
    assert not {"country:DE", "entity:Acme Germany", "function:marketing"} & nodes
    assert body["measures"]["pairs"] == 2  # the German pair is not theirs at all
    assert [w["wave_name"] for w in body["waves"]] == ["FR wave"]
    gexf = (await network(insights_env, world, "gexf", "regional_committee", countries=("FR",))).content
    assert set(nx.read_gexf(io.BytesIO(gexf)).nodes) == nodes
    other = await insights_env.api.get(f"/v1/programmes/{world.programme_id}/network", "org-other")
    assert other.status_code == 404
