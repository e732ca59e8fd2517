-- Reference data for the Jammu zone: its ten district cyber cells, the zone's
-- Cyber Police Station, the four operators, and a SAMPLE of number series.

INSERT INTO units (code, name, kind) VALUES
    ('jammu',     'Jammu District Cyber Cell',     'district'),
    ('samba',     'Samba District Cyber Cell',     'district'),
    ('kathua',    'Kathua District Cyber Cell',    'district'),
    ('udhampur',  'Udhampur District Cyber Cell',  'district'),
    ('reasi',     'Reasi District Cyber Cell',     'district'),
    ('doda',      'Doda District Cyber Cell',      'district'),
    ('kishtwar',  'Kishtwar District Cyber Cell',  'district'),
    ('ramban',    'Ramban District Cyber Cell',    'district'),
    ('rajouri',   'Rajouri District Cyber Cell',   'district'),
    ('poonch',    'Poonch District Cyber Cell',    'district'),
    ('cps-jammu', 'Cyber Police Station Jammu',    'zone')
ON CONFLICT (code) DO NOTHING;

-- Operators start on the 'pull' adapter (nothing is pushed until an admin
-- configures their interface with `fraudblock operator set`).
INSERT INTO operators (code, name) VALUES
    ('jio',    'Reliance Jio'),
    ('airtel', 'Bharti Airtel'),
    ('vi',     'Vodafone Idea (Vi)'),
    ('bsnl',   'BSNL')
ON CONFLICT (code) DO NOTHING;

-- SAMPLE number series: illustrative only, NOT an authoritative allocation.
-- Load the real table with `fraudblock routing load FILE`.
INSERT INTO number_series (prefix, operator_code, label) VALUES
    ('+9170060', 'jio',    'SAMPLE - illustrative, not authoritative'),
    ('+9179860', 'jio',    'SAMPLE - illustrative, not authoritative'),
    ('+9198100', 'airtel', 'SAMPLE - illustrative, not authoritative'),
    ('+9199060', 'airtel', 'SAMPLE - illustrative, not authoritative'),
    ('+9198110', 'vi',     'SAMPLE - illustrative, not authoritative'),
    ('+9197970', 'vi',     'SAMPLE - illustrative, not authoritative'),
    ('+9194190', 'bsnl',   'SAMPLE - illustrative, not authoritative'),
    ('+9194191', 'bsnl',   'SAMPLE - illustrative, not authoritative')
ON CONFLICT (prefix) DO NOTHING;
