"""Which operators must act on a target: the pure routing rules."""

from __future__ import annotations

from service.routing import candidate_prefixes, longest_prefix_operator, route_target

ACTIVE = ["jio", "airtel", "vi", "bsnl"]
SERIES = {"+9198": "airtel", "+919876": "jio", "+91987654": "vi", "+9170": "bsnl"}
NUMBER = "+919876543210"


def test_an_imei_goes_to_every_active_operator_whatever_else_is_known() -> None:
    learned = {"jio": True, "airtel": False}
    assert route_target("imei", "352099001761481", ACTIVE, SERIES, learned) == ACTIVE


def test_an_operator_that_confirmed_serving_the_number_gets_it_alone() -> None:
    assert route_target("msisdn", NUMBER, ACTIVE, SERIES, {"bsnl": True}) == ["bsnl"]


def test_a_confirmed_operator_that_is_disabled_is_ignored() -> None:
    active = ["jio", "airtel", "vi"]
    assert route_target("msisdn", NUMBER, active, SERIES, {"bsnl": True}) == ["vi"]


def test_the_longest_matching_series_prefix_wins() -> None:
    assert route_target("msisdn", NUMBER, ACTIVE, SERIES, {}) == ["vi"]
    assert route_target("msisdn", "+919876000000", ACTIVE, SERIES, {}) == ["jio"]
    assert route_target("msisdn", "+919800000000", ACTIVE, SERIES, {}) == ["airtel"]
    assert longest_prefix_operator(NUMBER, SERIES) == "vi"
    assert longest_prefix_operator("+14155550100", SERIES) is None


def test_not_subscriber_excludes_the_series_operator_and_falls_back_to_the_rest() -> None:
    routed = route_target("msisdn", NUMBER, ACTIVE, SERIES, {"vi": False})
    assert routed == ["jio", "airtel", "bsnl"]


def test_not_subscriber_answers_only_narrow_an_unknown_number() -> None:
    routed = route_target("msisdn", "+14155550100", ACTIVE, SERIES, {"jio": False, "vi": False})
    assert routed == ["airtel", "bsnl"]


def test_a_number_in_no_series_goes_to_every_active_operator() -> None:
    assert route_target("msisdn", "+14155550100", ACTIVE, SERIES, {}) == ACTIVE


def test_a_series_operator_that_is_disabled_means_every_active_operator() -> None:
    active = ["jio", "airtel", "bsnl"]
    assert route_target("msisdn", NUMBER, active, SERIES, {}) == active


def test_no_active_operator_means_no_route() -> None:
    assert route_target("imei", "352099001761481", [], SERIES, {}) == []
    assert route_target("msisdn", NUMBER, [], SERIES, {}) == []


def test_every_operator_saying_not_subscriber_means_no_route() -> None:
    learned = dict.fromkeys(ACTIVE, False)
    assert route_target("msisdn", NUMBER, ACTIVE, SERIES, learned) == []


def test_candidate_prefixes_run_from_three_characters_to_the_whole_number() -> None:
    prefixes = candidate_prefixes("+91987")
    assert prefixes == ["+91", "+919", "+9198", "+91987"]
