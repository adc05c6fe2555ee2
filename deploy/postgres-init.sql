-- Each service owns its database (the first, users, is created by POSTGRES_DB).
CREATE DATABASE orders;
CREATE DATABASE notifications;
