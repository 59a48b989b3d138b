from skebm.demo import main

main()
