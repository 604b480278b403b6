"""The cross-silo graph and its measures: pure logic over pairs."""

from __future__ import annotations

from services.insights.network.graph import OTHER_COUNTRIES, NetworkPair, Person, build, bridges, measures, scoped


def person(entity: str, function: str, country: str, generation: str | None = "gen_x") -> Person:
    return Person(entity, function, country, generation)


FR_FIN = person("Acme France", "finance", "FR")
FR_IT = person("Acme France", "it", "FR", "gen_z")
DE_MKT = person("Acme Germany", "marketing", "DE", "gen_z")
IT_HR = person("Acme Italia", "hr", "IT")


def test_closed_and_unreached_groups_are_silos() -> None:
    pairs = [NetworkPair("w1", FR_FIN, FR_IT, 2), NetworkPair("w1", DE_MKT, DE_MKT, 1)]
    graph = build(pairs, enrolled=[IT_HR])
    silos = measures(graph, pairs)["silos"]
    assert silos["entity"] == {"unreached": ["Acme Italia"], "closed": ["Acme France", "Acme Germany"]}
    assert silos["function"] == {"unreached": ["hr"], "closed": ["marketing"]}
    assert silos["country"] == {"unreached": ["IT"], "closed": ["DE", "FR"]}
    assert graph.edges["entity:Acme Germany", "entity:Acme Germany"]["pairs"] == 1


def test_bridges_are_the_only_links_between_groups() -> None:
    pairs = [
        NetworkPair("w1", FR_FIN, FR_IT, 1),
        NetworkPair("w1", FR_FIN, DE_MKT, 1),
        NetworkPair("w1", IT_HR, DE_MKT, 1),
        NetworkPair("w1", IT_HR, FR_IT, 1),
    ]
    graph = build(pairs)
    # Countries FR-DE-IT form a cycle: no bridge among them; entities too.
    assert not [b for b in bridges(graph) if b["dimension"] in ("country", "entity")]
    assert measures(graph, pairs)["components"]["country"] == 1


def test_a_committee_sees_people_of_other_countries_as_one_group() -> None:
    pairs = [NetworkPair("w1", FR_FIN, DE_MKT, 1), NetworkPair("w2", DE_MKT, IT_HR, 1)]
    shown = scoped(pairs, lambda c: c == "FR")
    assert shown == [NetworkPair("w1", FR_FIN, Person.outside(), 1)]
    labels = {data["label"] for _, data in build(shown).nodes(data=True)}
    assert OTHER_COUNTRIES in labels and not {"DE", "IT", "Acme Germany", "marketing"} & labels
    # Crossing shares leave the aggregated side out rather than guess.
    assert measures(build(shown), shown)["crossing_share"]["country"] is None


def test_the_json_does_not_depend_on_the_order_events_were_applied() -> None:
    """A rebuild applies the same events in another order: the same JSON,
    nodes by id, each link from the smaller id to the larger."""
    from services.insights.network.export import as_json

    pairs = [
        NetworkPair("w1", FR_FIN, FR_IT, 2),
        NetworkPair("w1", DE_MKT, FR_FIN, 1),
        NetworkPair("w2", IT_HR, DE_MKT, 3),
        NetworkPair("w2", FR_IT, IT_HR, 1),
    ]
    live = as_json(build(pairs))
    assert live == as_json(build(list(reversed(pairs))))
    assert [n["id"] for n in live["nodes"]] == sorted(n["id"] for n in live["nodes"])
    assert all(link["source"] <= link["target"] for link in live["links"])
    keys = [(link["dimension"], link["source"], link["target"]) for link in live["links"]]
    assert keys == sorted(keys)
