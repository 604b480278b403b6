-- Reporting lines from the organisation's HR directory (binome.directory.events,
-- consumers/reporting_lines.py): each provisioned person's employee reference
-- and manager. The "same reporting line" constraint compares a candidate's
-- employee_ref with the whole manager chain above the other one, not only the
-- direct manager. An erased person's row is deleted (their chain stops there).
CREATE TABLE {schema}.reporting_lines (
    person_id        uuid    PRIMARY KEY,
    organisation     text    NOT NULL,
    employee_number  text,
    manager_id       uuid,
    version          integer NOT NULL
);
CREATE INDEX reporting_lines_employee_idx ON {schema}.reporting_lines (organisation, employee_number);

-- The employee references above the person with employee reference `ref`
-- (nearest manager first): the transitive manager chain, each person once, so
-- a cycle (which the directory refuses, but a log may still hold) ends it.
CREATE FUNCTION {schema}.manager_chain(org text, ref text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up (person_id, manager_id, employee_number, depth, seen) AS (
        SELECT person_id, manager_id, employee_number, 0, ARRAY[person_id]
        FROM {schema}.reporting_lines WHERE organisation = org AND employee_number = ref
      UNION ALL
        SELECT m.person_id, m.manager_id, m.employee_number, up.depth + 1, up.seen || m.person_id
        FROM up JOIN {schema}.reporting_lines m ON m.person_id = up.manager_id AND m.organisation = org
        WHERE m.person_id <> ALL (up.seen)
    )
    SELECT coalesce(array_agg(employee_number ORDER BY depth) FILTER (WHERE depth > 0 AND employee_number IS NOT NULL),
                    '{}')
    FROM up
$$;
