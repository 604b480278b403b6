-- GDPR erasure: an erased participant no longer counts as an enrolment of
-- their (now unknown) person.
DROP INDEX {schema}.participants_one_enrolment_per_person;
CREATE UNIQUE INDEX participants_one_enrolment_per_person
    ON {schema}.participants (programme_id, employee_ref) WHERE status NOT IN ('withdrawn', 'erased');
